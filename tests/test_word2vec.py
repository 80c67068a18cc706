"""Skip-Gram's data pipeline and model do what their docstrings promise."""
import math

import numpy as np
import pytest
import torch

from course_lib import embedding_eval as E
from course_lib import word2vec as W


def test_tokenize_lowercases_and_drops_punctuation():
    assert W.tokenize("The cat's 3 hats, (blue)!") == ["the", "cat's", "3", "hats", "blue"]


def test_vocab_orders_by_count_and_drops_rare_words():
    vocab = W.Vocab([["a", "b", "a", "c"], ["a", "b", "d"]], min_count=2)
    assert vocab.words == ["a", "b"] and vocab.counts.tolist() == [3, 2]
    ids, sent = vocab.encode([["a", "x", "b"], ["b"]])
    assert ids.tolist() == [0, 1, 1] and sent.tolist() == [0, 0, 1]


def test_pairs_stay_inside_sentences_and_window():
    ids, sent = np.array([0, 1, 2, 3, 4]), np.array([0, 0, 0, 1, 1])
    centers, contexts = W.skipgram_pairs(ids, sent, window=1)
    assert sorted(zip(centers.tolist(), contexts.tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)]
    centers, contexts = W.skipgram_pairs(ids, sent, window=2)
    assert (0, 2) in set(zip(centers.tolist(), contexts.tolist()))
    assert (2, 3) not in set(zip(centers.tolist(), contexts.tolist()))


def test_dynamic_window_uses_near_words_more_often():
    n = 20000
    ids, sent = np.arange(n), np.zeros(n, dtype=np.int64)
    centers, contexts = W.skipgram_pairs(ids, sent, window=4, rng=np.random.default_rng(0))
    offsets = np.abs(contexts - centers)
    share = [np.mean(offsets == d) for d in range(1, 5)]
    assert share[0] > share[1] > share[2] > share[3]
    assert share[3] / share[0] == pytest.approx(1 / 4, abs=0.03)  # (w - d + 1) / w


def test_subsampling_keeps_rare_words_and_thins_frequent_ones():
    counts = np.array([1_000_000, 100, 1])
    keep = W.keep_probabilities(counts, sample=1e-3)
    assert keep[2] == 1.0 and keep[1] == 1.0 and keep[0] < 0.05


def test_negative_table_follows_the_three_quarter_power():
    table = W.negative_table(np.array([810, 10]), size=100_000)
    share = np.mean(table == 0)
    assert share == pytest.approx(810 ** 0.75 / (810 ** 0.75 + 10 ** 0.75), abs=1e-3)


def test_loss_matches_the_formula():
    model = W.SkipGram(5, 3)
    torch.nn.init.normal_(model.context.weight)
    c, o, neg = torch.tensor([1]), torch.tensor([2]), torch.tensor([[3, 4]])
    v, u = model.center.weight[1], model.context.weight
    expected = -torch.log(torch.sigmoid(u[2] @ v)) - torch.log(torch.sigmoid(-u[3] @ v)) \
        - torch.log(torch.sigmoid(-u[4] @ v))
    torch.testing.assert_close(model(c, o, neg)[0], expected)


def test_training_is_deterministic_and_learns_cooccurrence():
    rng = np.random.default_rng(0)
    # two "topics": words 0-9 co-occur with each other, words 10-19 with each other
    sentences = [[f"w{t * 10 + i}" for i in rng.integers(0, 10, 12)] for t in (0, 1) for _ in range(150)]
    cfg = W.SkipGramConfig(dim=16, window=3, epochs=3, min_count=1, sample=0, batch_size=256)
    run = W.train(sentences, cfg, log_every=2, progress=False)
    again = W.train(sentences, cfg, log_every=2, progress=False)
    np.testing.assert_array_equal(run.vectors(), again.vectors())
    assert run.losses[-1] < run.losses[0]
    kv = E.keyed_vectors(run.vocab.words, run.vectors())
    assert kv.similarity("w1", "w2") > kv.similarity("w1", "w12")


def test_training_counts_the_pairs_it_trained_on():
    sentences = [["a", "b", "c", "d"], ["e", "f"]] * 20
    cfg = W.SkipGramConfig(dim=8, window=1, epochs=2, min_count=1, sample=0, batch_size=16)
    run = W.train(sentences, cfg, log_every=1, progress=False)
    # window 1, no subsampling: 3 + 3 pairs per 4-word sentence, 1 + 1 per 2-word one, 40 sentences, 2 epochs
    assert run.pairs == 2 * 20 * (6 + 2)
    assert len(run.losses) == 2 * math.ceil(20 * 8 / 16)  # every pair went through one logged batch
    assert W.flops_per_pair(8, cfg.negatives) == 6 * (cfg.negatives + 1) * 8
    assert run.flops == run.pairs * W.flops_per_pair(8, cfg.negatives)


def test_keyed_vectors_neighbours_and_analogy():
    words = ["man", "woman", "king", "queen", "apple"]
    m = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1], [0, 0, -1]], dtype=np.float32)
    kv = E.keyed_vectors(words, m)
    assert E.analogy(kv, "man", "woman", "king") == "queen"
    assert E.neighbours(kv, "king", 1)[0][0] in {"man", "queen"}
