"""The whole-word masking check of notebook 06 accepts a right answer and explains typical wrong ones."""
import pytest
import torch

from course_lib import objectives
from course_lib.exercises import CheckFailed, grade
from course_lib.exercises import pretraining as checks
from course_lib.tokenization import train_wordpiece

WORDS = ["unbelievably", "heartwarming", "predictable", "performances", "screenplay", "forgettable", "the", "a",
         "film", "is", "and", "but", "acting", "story", "moving", "boring", "funny", "characters", "overlong"]


@pytest.fixture(scope="module")
def tokenizer():
    g = torch.Generator().manual_seed(0)
    texts = [" ".join(WORDS[i] for i in torch.randint(len(WORDS), (12,), generator=g)) for _ in range(300)]
    return train_wordpiece(texts, vocab_size=60, min_frequency=1)


@pytest.fixture(scope="module")
def blocks(tokenizer):
    """Packed-looking blocks: [CLS] ... [SEP], long words split into '##' pieces, some cut at a block start."""
    g = torch.Generator().manual_seed(1)
    stream = []
    for _ in range(3000):
        stream += tokenizer(WORDS[int(torch.randint(len(WORDS), (1,), generator=g))], add_special_tokens=False)["input_ids"]
    body = 62
    rows = [[tokenizer.cls_token_id] + stream[i:i + body] + [tokenizer.sep_token_id]
            for i in range(0, len(stream) - body + 1, body)][:200]
    ids = torch.tensor(rows)
    pieces = sum(t.startswith("##") for row in rows for t in tokenizer.convert_ids_to_tokens(row))
    assert pieces > 0.2 * ids.numel()  # the check needs many multi-piece words
    return ids


def whole_word_mask(input_ids, tokenizer, rate=0.15):
    """A right answer: one draw per word (at its first piece), then 80/10/10 per token."""
    special = torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids))
    pieces = torch.tensor([[t.startswith("##") for t in tokenizer.convert_ids_to_tokens(row)]
                           for row in input_ids.tolist()])
    starts = ~pieces | special
    first = (torch.arange(input_ids.shape[1]) * starts).cummax(1).values  # where each position's word starts
    chosen = (torch.rand(input_ids.shape) < rate).gather(1, first) & ~special
    labels = input_ids.masked_fill(~chosen, -100)
    roll = torch.rand(input_ids.shape)
    inputs = input_ids.masked_fill(chosen & (roll < 0.8), tokenizer.mask_token_id)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = torch.randint(len(tokenizer), input_ids.shape)[swap]
    return inputs, labels


def fails_with(fn, blocks, tokenizer, match):
    with pytest.raises(CheckFailed, match=match):
        checks.check_whole_word_masking(fn, blocks, tokenizer)


def test_a_right_answer_passes(blocks, tokenizer, capsys):
    grade("Exercise 1", checks.check_whole_word_masking, whole_word_mask, blocks, tokenizer)
    assert "whole words" in capsys.readouterr().out


def test_token_level_masking_is_told_pieces_go_with_their_word(blocks, tokenizer):
    fails_with(lambda ids, tok, rate: objectives.mask_tokens(ids, tok, rate), blocks, tokenizer,
               match="never masked alone|not the '##' piece after it")


def test_a_word_start_without_its_pieces_is_named(blocks, tokenizer):
    def starts_only(ids, tok, rate):
        inputs, labels = whole_word_mask(ids, tok, rate)
        pieces = torch.tensor([[t.startswith("##") for t in tok.convert_ids_to_tokens(row)] for row in ids.tolist()])
        after_start = pieces & ~torch.roll(pieces, 1, dims=1)  # the first '##' piece of each word
        labels[after_start] = -100
        inputs[after_start] = ids[after_start]
        return inputs, labels
    fails_with(starts_only, blocks, tokenizer, match="not the '##' piece after it")


def test_widening_chosen_tokens_to_words_is_told_the_rate_is_too_high(blocks, tokenizer):
    def widened(ids, tok, rate):
        return whole_word_mask(ids, tok, 1 - (1 - rate) ** 2)  # what choosing tokens, then their words, amounts to
    fails_with(widened, blocks, tokenizer, match="Choose each \\*word\\* with probability rate")


def test_labels_everywhere_are_told_to_use_ignore(blocks, tokenizer):
    fails_with(lambda ids, tok, rate: (whole_word_mask(ids, tok, rate)[0], ids.clone()), blocks, tokenizer,
               match="must be -100")


def test_a_changed_label_or_an_in_place_edit_is_named(blocks, tokenizer):
    def wrong_labels(ids, tok, rate):
        inputs, labels = whole_word_mask(ids, tok, rate)
        return inputs, torch.where(labels != -100, inputs, labels)  # the corrupted token instead of the original
    fails_with(wrong_labels, blocks, tokenizer, match="ORIGINAL")

    def in_place(ids, tok, rate):
        inputs, labels = whole_word_mask(ids, tok, rate)
        ids.copy_(inputs)
        return inputs, labels
    fails_with(in_place, blocks.clone(), tokenizer, match="in place")


def test_all_mask_is_told_the_80_10_10_split(blocks, tokenizer):
    def all_mask(ids, tok, rate):
        inputs, labels = whole_word_mask(ids, tok, rate)
        return inputs.masked_fill(labels != -100, tok.mask_token_id), labels
    fails_with(all_mask, blocks, tokenizer, match="became \\[MASK\\]; it should be 80%")


def test_unattempted_exercise_says_so(blocks, tokenizer):
    def unattempted(*_):
        raise NotImplementedError
    with pytest.raises(CheckFailed, match="not attempted yet"):
        grade("Exercise 1", checks.check_whole_word_masking, unattempted, blocks, tokenizer)
