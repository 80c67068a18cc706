"""The graded checks of notebooks 01-04 accept right answers and explain wrong ones."""
import numpy as np
import pytest
import torch

from course_lib import attention as A
from course_lib import embedding_eval
from course_lib.exercises import CheckFailed, grade
from course_lib.exercises import attention as att, embeddings as emb, objectives as obj, tokenization as tok


def fails_with(check, *args, match):
    with pytest.raises(CheckFailed, match=match):
        check(*args)


def test_grade_reports_unattempted_exercises():
    def unattempted(*_):
        raise NotImplementedError
    with pytest.raises(CheckFailed, match="not attempted yet"):
        grade("Exercise 1", emb.check_pairs, unattempted)


# --- 01 -----------------------------------------------------------------------------------------------

def test_pairs_check():
    emb.check_pairs(emb.reference_pairs)
    fails_with(emb.check_pairs, lambda t, w: [(t[i], t[j]) for i in range(len(t))
                                              for j in range(max(0, i - w), min(len(t), i + w + 1))],
               match="paired with itself")
    fails_with(emb.check_pairs, lambda t, w: [(t[i], t[j]) for i in range(len(t))
                                              for j in range(i + 1, min(len(t), i + w + 1))], match="missing")


def test_sgns_loss_check():
    right = lambda v, p, n: -torch.nn.functional.logsigmoid(p @ v) - torch.nn.functional.logsigmoid(-(n @ v)).sum()
    emb.check_sgns_loss(right)
    fails_with(emb.check_sgns_loss, lambda v, p, n: -torch.nn.functional.logsigmoid(p @ v)
               - torch.nn.functional.logsigmoid(n @ v).sum(), match="minus sign")


def test_analogy_check():
    words = ["man", "king", "woman", "queen", "france", "paris", "germany", "berlin"]
    m = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0],
                  [0, 0, 0, 1], [0, 1, 0, 1], [1, 0, 0, 1], [1, 1, 0, 1]], dtype=np.float32)
    kv = embedding_eval.keyed_vectors(words, m + 0.01 * np.arange(32).reshape(8, 4))
    emb.check_analogy(embedding_eval.analogy, kv)
    fails_with(emb.check_analogy, lambda kv, a, b, c: b, kv, match="exclude")


def test_keep_probability_check():
    emb.check_keep_probability(lambda f, t: min(1.0, (np.sqrt(f / t) + 1) * t / f))
    fails_with(emb.check_keep_probability, lambda f, t: (np.sqrt(f / t) + 1) * t / f, match="cap it at 1")


# --- 02 -----------------------------------------------------------------------------------------------

def test_bpe_encode_check():
    merges = [("e", "s"), ("es", "t</w>"), ("l", "o"), ("e", "w"), ("lo", "w</w>"), ("lo", "w")]
    tok.check_bpe_encode(tok.apply_merges, merges)
    longest_first = lambda w, m: tok.apply_merges(w, sorted(m, key=lambda p: -len(p[0] + p[1])))
    fails_with(tok.check_bpe_encode, longest_first, merges, match="order they were learned")


def test_wordpiece_check():
    from course_lib.tokenization import train_wordpiece
    texts = ["happy unhappy happiness playing player played tokens token embedding"] * 20
    wp = train_wordpiece(texts, vocab_size=120, min_frequency=1)

    def segment(word, vocab):
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    pieces.append(piece)
                    start = end
                    break
            else:
                return ["[UNK]"]
        return pieces
    tok.check_wordpiece(segment, wp)
    fails_with(tok.check_wordpiece, lambda w, v: list(w), wp, match="##")


# --- 03 -----------------------------------------------------------------------------------------------

def test_attention_checks():
    att.check_causal_mask(A.causal_mask)
    fails_with(att.check_causal_mask, lambda t: torch.ones(t, t, dtype=torch.bool), match="later")
    att.check_attention(A.scaled_dot_product_attention)
    fails_with(att.check_attention, lambda q, k, v, m: torch.softmax(q @ k.transpose(-2, -1), -1) @ v,
               match="sqrt")
    att.check_positions(A.sinusoidal_positions)
    fails_with(att.check_positions, lambda t, d: A.sinusoidal_positions(t, d).roll(1, dims=1), match="swapped|position 0")


# --- 04 -----------------------------------------------------------------------------------------------

def test_clm_loss_check():
    def right(logits, labels):
        return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())
    obj.check_clm_loss(right)
    fails_with(obj.check_clm_loss, lambda lg, lb: torch.nn.functional.cross_entropy(lg.flatten(0, 1), lb.flatten()),
               match="no shift")


def test_mask_tokens_check():
    def right(ids, special, mask_id, vocab_size, g):
        inputs, labels = ids.clone(), ids.clone()
        chosen = (torch.rand(ids.shape, generator=g) < 0.15) & ~special
        labels[~chosen] = -100
        roll = torch.rand(ids.shape, generator=g)
        inputs[chosen & (roll < 0.8)] = mask_id
        spots = chosen & (roll >= 0.8) & (roll < 0.9)
        inputs[spots] = torch.randint(0, vocab_size, ids.shape, generator=g)[spots]
        return inputs, labels

    def all_masked(ids, special, mask_id, vocab_size, g):
        inputs, labels = right(ids, special, mask_id, vocab_size, g)
        inputs[labels != -100] = mask_id
        return inputs, labels

    obj.check_mask_tokens(right)
    fails_with(obj.check_mask_tokens, all_masked, match="became \\[MASK\\]")


class _Vocabulary:
    """The three things ``objectives.mask_tokens`` asks of a tokenizer."""
    def __init__(self, special_ids, mask_token_id, size):
        self.all_special_ids, self.mask_token_id, self.size = special_ids, mask_token_id, size

    def __len__(self):
        return self.size


def test_the_course_masking_passes_exercise_2_and_typical_mistakes_get_their_hint():
    from course_lib import objectives

    def course(ids, special, mask_id, vocab_size, g):
        torch.manual_seed(int(torch.randint(2 ** 31, (1,), generator=g)))
        inputs, labels = objectives.mask_tokens(ids.masked_fill(special, 0), _Vocabulary([0], mask_id, vocab_size))
        inputs[special] = ids[special]  # the check marks its special positions with a mask, not with special ids
        return inputs, labels
    obj.check_mask_tokens(course)

    def specials_too(ids, special, mask_id, vocab_size, g):
        return course(ids, torch.zeros_like(special), mask_id, vocab_size, g)
    fails_with(obj.check_mask_tokens, specials_too, match="special tokens")

    def in_place(ids, special, mask_id, vocab_size, g):
        inputs, labels = course(ids, special, mask_id, vocab_size, g)
        ids.copy_(inputs)
        return inputs, labels
    fails_with(obj.check_mask_tokens, in_place, match="in place")

    def masked_labels(ids, special, mask_id, vocab_size, g):
        inputs, labels = course(ids, special, mask_id, vocab_size, g)
        return inputs, torch.where(labels != -100, inputs, labels)
    fails_with(obj.check_mask_tokens, masked_labels, match="original")

    def no_random(ids, special, mask_id, vocab_size, g):
        torch.manual_seed(0)
        inputs, labels = objectives.mask_tokens(ids.masked_fill(special, 0), _Vocabulary([0], mask_id, vocab_size),
                                                mask_prob=0.9, random_prob=0.0)
        inputs[special] = ids[special]
        return inputs, labels
    fails_with(obj.check_mask_tokens, no_random, match="became \\[MASK\\]|left unchanged|random")
