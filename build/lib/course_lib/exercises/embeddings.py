"""Checks for notebook 01's exercises: Skip-Gram pairs, the negative-sampling loss, analogies."""
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F

from . import expect
from .. import embedding_eval

SENTENCE = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]


def reference_pairs(tokens: list, window: int) -> list:
    return [(c, tokens[j]) for i, c in enumerate(tokens)
            for j in range(max(0, i - window), min(len(tokens), i + window + 1)) if j != i]


def check_pairs(skipgram_pairs) -> None:
    """``skipgram_pairs(tokens, window)`` -> every (center, context) with 0 < |offset| <= window."""
    for window in (1, 2, 3):
        got = skipgram_pairs(SENTENCE, window)
        expect(all(isinstance(p, tuple) and len(p) == 2 for p in got),
               "return a list of (center, context) tuples of two words")
        got, want = Counter(got), Counter(reference_pairs(SENTENCE, window))
        self_pairs = [p for p in got if p[0] == p[1] and p not in want]
        expect(not self_pairs, f"window={window}: a word is paired with itself {self_pairs[:2]}; skip offset 0")
        missing, extra = want - got, got - want
        expect(not missing, f"window={window}: missing {sum(missing.values())} pair(s), e.g. "
                            f"{list(missing)[:3]} - look at both sides of the center and at the sentence ends")
        expect(not extra, f"window={window}: {sum(extra.values())} pair(s) too many, e.g. {list(extra)[:3]} "
                          "- contexts must be at most `window` positions away, and each pair counted once "
                          "per position")


def check_sgns_loss(sgns_loss) -> None:
    """``sgns_loss(v, u_pos, u_neg)`` -> -log σ(u_pos·v) - Σ_k log σ(-u_neg[k]·v) for one pair."""
    g = torch.Generator().manual_seed(0)
    v, u_pos, u_neg = torch.randn(8, generator=g), torch.randn(8, generator=g), torch.randn(5, 8, generator=g)
    got = sgns_loss(v, u_pos, u_neg)
    expect(isinstance(got, torch.Tensor) and got.dim() == 0, "return a scalar tensor (one number for the pair)")
    want = -F.logsigmoid(u_pos @ v) - F.logsigmoid(-(u_neg @ v)).sum()
    wrong_sign = -F.logsigmoid(u_pos @ v) - F.logsigmoid(u_neg @ v).sum()
    mean_neg = -F.logsigmoid(u_pos @ v) - F.logsigmoid(-(u_neg @ v)).mean()
    expect(not torch.isclose(got, wrong_sign), "the negatives need a minus sign inside: log σ(-u_k·v), "
                                               "so the loss pushes noise words *away*")
    expect(not torch.isclose(got, mean_neg), "sum the k negative terms, don't average them")
    expect(bool(got > 0), "a negative log-likelihood is positive; check the overall sign")
    expect(torch.isclose(got, want, atol=1e-5), f"expected {want.item():.4f}, got {got.item():.4f}")


def check_analogy(solve, kv) -> None:
    """``solve(kv, a, b, c)`` -> the word nearest to b - a + c (unit vectors), never a, b or c."""
    questions = [q for q in (("man", "king", "woman"), ("france", "paris", "germany"), ("big", "bigger", "small"),
                             ("good", "better", "bad"), ("january", "february", "march"))
                 if all(w in kv.key_to_index for w in q)]
    for a, b, c in questions:
        got, want = solve(kv, a, b, c), embedding_eval.analogy(kv, a, b, c)
        expect(got not in (a, b, c), f"{a} : {b} :: {c} : ? returned {got!r}, one of the question's words; "
                                     "exclude a, b and c from the candidates")
        expect(isinstance(got, str), f"return the answer word as a string, not {type(got).__name__}")
        expect(got == want, f"{a} : {b} :: {c} : ? - expected {want!r}, got {got!r}. Use unit-length vectors "
                            "(kv.get_vector(w, norm=True)) and cosine similarity to all words")


def check_keep_probability(keep_probability) -> None:
    """``keep_probability(f, t)`` -> word2vec's (sqrt(f/t) + 1) · t / f, capped at 1."""
    for f in (1e-6, 1e-3, 0.01, 0.06):
        got, want = keep_probability(f, 1e-3), min(1.0, (np.sqrt(f / 1e-3) + 1) * 1e-3 / f)
        expect(abs(got - want) < 1e-6, f"for f={f}: expected {want:.4f}, got {got:.4f}"
                                       + (" - cap it at 1" if got > 1 else ""))
