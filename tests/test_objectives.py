"""The objectives' collators produce the inputs and labels notebook 04 says they do."""
import math

import pytest
import torch

from course_lib import objectives as O
from course_lib.tokenization import train_bpe, train_wordpiece

TEXTS = ["the cat sat on the mat and the dog sat on the log",
         "a bird in the hand is worth two in the bush",
         "to be or not to be that is the question"] * 30


@pytest.fixture(scope="module")
def wordpiece():
    return train_wordpiece(TEXTS, vocab_size=200, min_frequency=1)


@pytest.fixture(scope="module")
def bpe():
    return train_bpe(TEXTS, vocab_size=300, min_frequency=1)


def examples(tokenizer, n=60):
    return [{"input_ids": ids} for ids in tokenizer(TEXTS[:n])["input_ids"]]


def test_clm_labels_are_the_inputs_with_padding_ignored(bpe):
    batch = O.causal_lm_collator(bpe)(examples(bpe, 3))
    real = batch["attention_mask"].bool()
    assert torch.equal(batch["labels"][real], batch["input_ids"][real])
    assert torch.all(batch["labels"][~real] == O.IGNORE)
    assert O.targets_per_token(batch) == 1.0


def test_show_shifts_causal_labels_by_one(bpe):
    batch = O.causal_lm_collator(bpe)(examples(bpe, 1))
    lines = O.show(bpe, batch, shift=True).splitlines()
    tokens = bpe.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    assert lines[1].split()[1:] == [tokens[0], tokens[1]]


def test_mlm_masks_about_15_percent_with_80_10_10(wordpiece):
    torch.manual_seed(0)
    exs = examples(wordpiece, 90) * 20
    originals = torch.nn.utils.rnn.pad_sequence([torch.tensor(e["input_ids"]) for e in exs], batch_first=True,
                                                padding_value=wordpiece.pad_token_id)
    batch = O.masked_lm_collator(wordpiece)(exs)
    stats = O.masking_breakdown(originals, batch, wordpiece)
    assert abs(stats["chosen"] - 0.15) < 0.02
    assert abs(stats["mask"] - 0.8) < 0.04
    assert abs(stats["random"] + stats["kept"] - 0.2) < 0.04
    specials = torch.isin(originals, torch.tensor(wordpiece.all_special_ids))
    assert torch.all(batch["labels"][specials] == O.IGNORE)


def test_span_corruption_round_trips():
    ids = list(range(100, 140))
    sentinels = [1, 2, 3, 4, 5]
    corrupted, target = O.corrupt_spans(ids, sentinels, torch.Generator().manual_seed(0))
    hidden = [t for t in target if t not in sentinels]
    assert 0 < len(hidden) <= len(ids) // 4
    # filling each sentinel with the tokens after it in the target restores the sequence
    spans, current = {}, None
    for t in target:
        if t in sentinels:
            current = t
            spans[t] = []
        else:
            spans[current].append(t)
    restored = [x for t in corrupted for x in (spans[t] if t in sentinels else [t])]
    assert restored == ids


def test_span_corruption_collator_scores_only_the_target(bpe):
    sentinels = O.add_sentinels(bpe, 4)
    torch.manual_seed(0)  # the span starts come from torch's generator, which the trainer seeds per step
    batch = O.SpanCorruptionCollator(bpe, sentinels, bpe.eos_token_id)(examples(bpe, 4))
    for row in range(4):
        labels = batch["labels"][row]
        scored = (labels != O.IGNORE).nonzero().flatten()
        assert labels[scored[0]].item() in sentinels  # the target starts with the first sentinel
        separator = scored[0] - 1
        assert batch["input_ids"][row, separator] == bpe.eos_token_id
        end = int(batch["attention_mask"][row].sum())
        # the model reads the damaged text, then must write the target it is scored on, token for token
        assert torch.equal(labels[separator + 1:end], batch["input_ids"][row, separator + 1:end])
        assert torch.all(labels[end:] == O.IGNORE)
        prefix = batch["input_ids"][row, :separator].tolist()
        target = labels[separator + 1:end].tolist()
        assert [t for t in prefix if t in sentinels] == [t for t in target if t in sentinels]


def test_packed_blocks_need_no_padding(bpe):
    blocks = [{"input_ids": list(range(10, 26))} for _ in range(3)]
    batch = O.causal_lm_collator(bpe)(blocks)
    assert set(batch) == {"input_ids", "labels"} and torch.equal(batch["labels"], batch["input_ids"])


def test_masking_split_can_be_changed(wordpiece):
    torch.manual_seed(0)
    exs = examples(wordpiece, 90) * 20
    batch = O.masked_lm_collator(wordpiece, mask_prob=0.5, random_prob=0.5)(exs)
    originals = O.stack(exs, wordpiece.pad_token_id)["input_ids"]
    stats = O.masking_breakdown(originals, batch, wordpiece)
    assert abs(stats["mask"] - 0.5) < 0.04 and stats["kept"] < 0.02  # a random token is rarely the original


def test_transformers_collator_agrees_with_the_course_masking(wordpiece):
    """transformers' DataCollatorForLanguageModeling implements the same 80/10/10 recipe."""
    from transformers import DataCollatorForLanguageModeling

    exs = examples(wordpiece, 90) * 20
    originals = O.stack(exs, wordpiece.pad_token_id)["input_ids"]
    torch.manual_seed(0)
    ours = O.masking_breakdown(originals, O.masked_lm_collator(wordpiece)(exs), wordpiece)
    theirs_batch = DataCollatorForLanguageModeling(wordpiece, mlm_probability=0.15, seed=0)(exs)
    theirs = O.masking_breakdown(originals, theirs_batch, wordpiece)
    for key in ("chosen", "mask", "random", "kept"):
        assert ours[key] == pytest.approx(theirs[key], abs=0.03), key
    assert torch.all(theirs_batch["labels"][originals == wordpiece.pad_token_id] == O.IGNORE)


def test_baselines():
    assert O.uniform_loss(8000) == pytest.approx(math.log(8000))
    # a text that repeats one token costs nearly nothing under its own unigram model
    assert O.unigram_loss([5] * 1000, [5] * 10, 10) < 0.01
    # a uniform text gives the uniform loss
    assert O.unigram_loss(list(range(10)) * 10, list(range(10)), 10) == pytest.approx(math.log(10))


def test_span_corruption_for_an_encoder_decoder_splits_input_and_target(bpe):
    sentinels = O.add_sentinels(bpe, 4)
    rows = examples(bpe, 4)
    torch.manual_seed(0)
    batch = O.SpanCorruptionCollator(bpe, sentinels, encoder_decoder=True)(rows)
    for row, example in enumerate(rows):
        inputs = [t for t in batch["input_ids"][row].tolist() if t != bpe.pad_token_id]
        target = [t for t in batch["labels"][row].tolist() if t != O.IGNORE]
        assert target[-1] == bpe.eos_token_id and target[0] in sentinels  # it ends, so generation can stop
        spans, current = {}, None
        for t in target[:-1]:
            if t in sentinels:
                current, spans[t] = t, []
            else:
                spans[current].append(t)
        restored = [x for t in inputs for x in (spans[t] if t in sentinels else [t])]
        assert restored == example["input_ids"]  # the encoder reads the rest, the decoder writes the spans
    with pytest.raises(ValueError, match="separator_id"):
        O.SpanCorruptionCollator(bpe, sentinels)
