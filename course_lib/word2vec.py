"""Skip-Gram with negative sampling (Mikolov et al. 2013), in PyTorch, small enough to read at once.

The pipeline, one function each:

    text --tokenize--> sentences --Vocab--> ids --subsample--> fewer "the"s
         --skipgram_pairs--> (center, context) --negative_table--> k noise words per pair
         --SkipGram--> loss = -log σ(u_o·v_c) - Σ log σ(-u_n·v_c) --SGD--> word vectors (단어 임베딩)

Everything is seeded, so the same corpus and config give the same vectors on every run.
"""
import re
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import data

TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+")


def tokenize(text: str) -> list:
    """Lower-cased words and numbers; punctuation is dropped (it carries little for word similarity)."""
    return TOKEN.findall(text.lower())


def english_corpus() -> list:
    """The course's offline English corpus as token lists: gensim's Wikipedia sample + the Lee news corpus.

    About 0.48M words in total — roughly 1/35 of text8 and 1/200,000 of Google News (100B words).
    """
    return [s for s in (tokenize(t) for t in data.wiki_paragraphs() + data.lee_corpus()) if len(s) > 1]


# --- vocabulary, subsampling, noise distribution --------------------------------------------------

class Vocab:
    """Words seen at least ``min_count`` times, most frequent first, with their counts."""

    def __init__(self, sentences, min_count: int = 5):
        counts = Counter(w for s in sentences for w in s)
        ranked = sorted((c, w) for w, c in counts.items() if c >= min_count)[::-1]
        ranked.sort(key=lambda cw: -cw[0])  # stable: ties stay in reverse-alphabetical order
        self.words = [w for _, w in ranked]
        self.counts = np.array([c for c, _ in ranked], dtype=np.int64)
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self):
        return len(self.words)

    def encode(self, sentences) -> tuple:
        """Flat id array and, per token, the sentence it came from (pairs never cross sentences).

        Rare words are dropped *before* windows are formed, as in word2vec.
        """
        ids, sent = [], []
        for k, s in enumerate(sentences):
            known = [self.index[w] for w in s if w in self.index]
            ids += known
            sent += [k] * len(known)
        return np.array(ids, dtype=np.int64), np.array(sent, dtype=np.int64)


def keep_probabilities(counts: np.ndarray, sample: float = 1e-3) -> np.ndarray:
    """word2vec's subsampling: keep word w with probability (sqrt(f/t) + 1) · t/f, f = its frequency.

    Words rarer than about t are always kept; "the" (f ≈ 6%) is kept about 1 time in 7. This is the
    C code's (and gensim's) formula; the paper's 1 - sqrt(t/f) discard rate is the same idea.
    """
    if sample <= 0:  # gensim's convention: sample=0 switches subsampling off
        return np.ones(len(counts))
    f = counts / counts.sum()
    return np.minimum(1.0, (np.sqrt(f / sample) + 1) * sample / f)


def subsample(ids: np.ndarray, sent: np.ndarray, keep: np.ndarray, rng: np.random.Generator) -> tuple:
    """Drop each token with probability 1 - keep[token]; a fresh draw every epoch."""
    mask = rng.random(len(ids)) < keep[ids]
    return ids[mask], sent[mask]


def negative_table(counts: np.ndarray, power: float = 0.75, size: int = 1_000_000) -> np.ndarray:
    """word2vec's unigram table: word w fills a share ∝ count^0.75 of it; a uniform index draws a noise word.

    The 3/4 power flattens the distribution, so rare words are drawn more often than their frequency.
    """
    weights = counts.astype(np.float64) ** power
    slots = np.maximum(1, np.round(weights / weights.sum() * size)).astype(np.int64)
    return np.repeat(np.arange(len(counts)), slots)


# --- (center, context) pairs -----------------------------------------------------------------------

def skipgram_pairs(ids: np.ndarray, sent: np.ndarray, window: int, rng: np.random.Generator | None = None) -> tuple:
    """Every (center, context) with |offset| <= window inside one sentence, as two id arrays.

    With ``rng``, each center draws its own window in 1..window (word2vec's "dynamic window"):
    a word at distance d is used with probability (window - d + 1) / window, so near words weigh more.
    """
    reach = rng.integers(1, window + 1, len(ids)) if rng is not None else np.full(len(ids), window)
    centers, contexts = [], []
    for d in range(1, window + 1):
        same = sent[:-d] == sent[d:]
        right = same & (reach[:-d] >= d)  # center i, context i + d
        left = same & (reach[d:] >= d)    # center i + d, context i
        centers += [ids[:-d][right], ids[d:][left]]
        contexts += [ids[d:][right], ids[:-d][left]]
    return np.concatenate(centers), np.concatenate(contexts)


# --- the model -----------------------------------------------------------------------------------------

class SkipGram(nn.Module):
    """Two tables: ``center`` (v_w, the word vectors we keep) and ``context`` (u_w, used only in training).

    Initialised like word2vec: small random center vectors, zero context vectors.
    """

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.center = nn.Embedding(vocab_size, dim, sparse=True)
        self.context = nn.Embedding(vocab_size, dim, sparse=True)
        nn.init.uniform_(self.center.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.context.weight)

    def forward(self, center, context, negatives):
        """Per-pair loss -log σ(u_o·v_c) - Σ_k log σ(-u_k·v_c): k binary 'real or noise?' questions
        replace the softmax over the whole vocabulary."""
        v = self.center(center)                                               # (B, d)
        positive = (self.context(context) * v).sum(-1)                        # (B,)
        negative = torch.bmm(self.context(negatives), v.unsqueeze(-1)).squeeze(-1)  # (B, k)
        return -(F.logsigmoid(positive) + F.logsigmoid(-negative).sum(-1))

    def vectors(self) -> np.ndarray:
        return self.center.weight.detach().numpy().copy()


@dataclass
class SkipGramConfig:
    """gensim's defaults for skip-gram, so the reference can run with the same model settings (its number of epochs is the notebook's choice)."""
    dim: int = 100
    window: int = 5
    negatives: int = 5
    min_count: int = 5
    sample: float = 1e-3
    epochs: int = 5
    batch_size: int = 4096
    lr: float = 0.01         # SparseAdam's peak; decays linearly to 0, as word2vec's does
    seed: int = 0


@dataclass
class SkipGramRun:
    model: SkipGram
    vocab: Vocab
    losses: list          # mean pair loss per ``log_every`` batches
    epoch_ends: list      # index into ``losses`` where each epoch ended
    corpus_words: int     # raw words per epoch (before min_count and subsampling), for words/s
    seconds: float
    pairs: int            # (center, context) pairs trained on, all epochs together: the work done
    config: SkipGramConfig

    @property
    def flops(self) -> int:
        """Training FLOPs of the run: ``pairs`` times ``flops_per_pair``."""
        return self.pairs * flops_per_pair(self.config.dim, self.config.negatives)

    @property
    def words_per_second(self) -> float:
        """Raw corpus words per second of training, gensim's way of counting."""
        return self.corpus_words * len(self.epoch_ends) / self.seconds

    def vectors(self) -> np.ndarray:
        return self.model.vectors()


def flops_per_pair(dim: int, negatives: int) -> int:
    """Training FLOPs of one (center, context) pair with ``negatives`` noise words.

    Forward: 1 + k dot products of two ``dim``-vectors, 2·dim FLOPs each; backward about twice that
    (the gradients of both vectors of each product), as for any weight: 6·(k + 1)·dim. The
    optimizer's update of the rows touched is not counted (the course trainer counts none either).
    """
    return 6 * (negatives + 1) * dim


def train(sentences, cfg: SkipGramConfig = SkipGramConfig(), log_every: int = 200, progress: bool = True) -> SkipGramRun:
    """Train Skip-Gram with negative sampling on ``sentences`` (lists of tokens).

    word2vec updates after every pair with plain SGD; PyTorch pays a fixed overhead per call, so
    here 4,096 pairs go in one batch. Summing their gradients would hit frequent words ("the" is a
    negative ~100 times per batch) with a huge step, so the mean loss goes to SparseAdam instead,
    whose per-row step size does not grow with how often a word appears in the batch.
    """
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    vocab = Vocab(sentences, cfg.min_count)
    ids, sent = vocab.encode(sentences)
    keep, table = keep_probabilities(vocab.counts, cfg.sample), negative_table(vocab.counts)
    model = SkipGram(len(vocab), cfg.dim)
    optimizer = torch.optim.SparseAdam(list(model.parameters()), lr=cfg.lr)
    losses, chunk, epoch_ends, pairs = [], [], [], 0
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        centers, contexts = skipgram_pairs(*subsample(ids, sent, keep, rng), cfg.window, rng)
        order = rng.permutation(len(centers))
        negatives = table[rng.integers(0, len(table), (len(centers), cfg.negatives))]
        pairs += len(centers)
        batches = range(0, len(order), cfg.batch_size)
        for b in tqdm(batches, desc=f"epoch {epoch + 1}", disable=not progress):
            idx = order[b:b + cfg.batch_size]
            progress_frac = (epoch + b / len(order)) / cfg.epochs
            optimizer.param_groups[0]["lr"] = cfg.lr * (1 - progress_frac)
            loss = model(torch.from_numpy(centers[idx]), torch.from_numpy(contexts[idx]),
                         torch.from_numpy(negatives[idx]))
            optimizer.zero_grad()
            loss.mean().backward()
            optimizer.step()
            chunk.append(loss.mean().item())
            if len(chunk) == log_every:
                losses.append(float(np.mean(chunk)))
                chunk = []
        epoch_ends.append(len(losses))
    seconds = time.perf_counter() - start
    return SkipGramRun(model, vocab, losses, epoch_ends, sum(len(s) for s in sentences), seconds, pairs, cfg)
