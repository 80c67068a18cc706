"""How good are word vectors? The standard test sets gensim ships, and a small transfer test.

Both the course's Skip-Gram and gensim's Word2Vec are wrapped as gensim ``KeyedVectors``, so the
*same* evaluation code scores both and any difference comes from the training, not the scoring.

- analogies (Mikolov et al. 2013, ``questions-words.txt``): a : b :: c : ?  answered by the word
  nearest to b - a + c (3CosAdd), excluding a, b, c;
- similarity: Spearman ρ between cosine similarity and human ratings (WordSim-353, SimLex-999);
- transfer: a bag-of-embeddings SST-2 classifier with frozen pretrained vs random vectors.
"""
import numpy as np
import torch
from gensim.models import KeyedVectors
from torch import nn

from . import data
from .word2vec import tokenize

SIMILARITY_SETS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


def keyed_vectors(words: list, matrix: np.ndarray) -> KeyedVectors:
    """Wrap a (V, d) matrix so gensim's similarity, analogy and neighbour functions work on it."""
    kv = KeyedVectors(matrix.shape[1])
    kv.add_vectors(words, matrix.astype(np.float32))
    return kv


def neighbours(kv: KeyedVectors, word: str, k: int = 5) -> list:
    """The ``k`` nearest words by cosine similarity, similarities rounded for stable printing."""
    return [(w, round(float(s), 2)) for w, s in kv.most_similar(word, topn=k)]


def analogy(kv: KeyedVectors, a: str, b: str, c: str) -> str:
    """a : b :: c : ?  -> the word whose unit vector is closest to unit(b) - unit(a) + unit(c)."""
    return kv.most_similar(positive=[b, c], negative=[a], topn=1)[0][0]


def analogy_scores(kv: KeyedVectors) -> dict:
    """Accuracy on the Google analogy set, over the questions whose four words are all in the vocabulary.

    ``coverage`` says how many of the 19,544 questions that is: with a small corpus, many are skipped.
    """
    path = data.gensim_file("questions-words.txt")
    _, sections = kv.evaluate_word_analogies(path, restrict_vocab=len(kv))
    with open(path) as f:
        total = sum(1 for line in f if not line.startswith(":"))

    def score(parts):
        correct = sum(len(s["correct"]) for s in parts)
        attempted = correct + sum(len(s["incorrect"]) for s in parts)
        return correct / attempted if attempted else 0.0, attempted

    by_kind = [s for s in sections if s["section"] != "Total accuracy"]
    semantic = [s for s in by_kind if not s["section"].startswith("gram")]
    syntactic = [s for s in by_kind if s["section"].startswith("gram")]
    accuracy, attempted = score(by_kind)
    return {"accuracy": accuracy, "attempted": attempted, "coverage": attempted / total,
            "semantic": score(semantic)[0], "syntactic": score(syntactic)[0]}


def similarity_scores(kv: KeyedVectors, name: str) -> dict:
    """Spearman ρ with human similarity ratings on the pairs whose words are both known."""
    path = data.gensim_file(SIMILARITY_SETS[name])
    _, spearman, oov_percent = kv.evaluate_word_pairs(path, restrict_vocab=len(kv))
    return {"spearman": float(spearman.statistic), "coverage": 1 - oov_percent / 100}


def all_scores(kv: KeyedVectors) -> dict:
    """The headline numbers: analogy accuracy (+coverage) and ρ on WordSim-353 and SimLex-999."""
    analogies = analogy_scores(kv)
    scores = {"analogy_acc": analogies["accuracy"], "analogy_coverage": analogies["coverage"]}
    for name in SIMILARITY_SETS:
        scores[f"{name}_rho"] = similarity_scores(kv, name)["spearman"]
    return scores


# --- transfer: word vectors as the first pretrained weights ----------------------------------------

class BagOfEmbeddings(nn.Module):
    """Average the word vectors of a sentence, then one linear layer: the simplest text classifier."""

    def __init__(self, matrix: np.ndarray, freeze: bool, n_labels: int = 2):
        super().__init__()
        self.embed = nn.EmbeddingBag.from_pretrained(torch.tensor(matrix, dtype=torch.float32), freeze=freeze,
                                                     mode="mean")
        self.head = nn.Linear(matrix.shape[1], n_labels)

    def forward(self, ids, offsets):
        return self.head(self.embed(ids, offsets))


def bag_inputs(texts: list, index: dict) -> tuple:
    """Flat known-word ids and start offsets (EmbeddingBag's input); unknown words are dropped,
    empty sentences get one id 0 so every sentence has a vector."""
    rows = [[index[w] for w in tokenize(t) if w in index] or [0] for t in texts]
    offsets = np.cumsum([0] + [len(r) for r in rows[:-1]])
    return torch.tensor([i for r in rows for i in r]), torch.tensor(offsets)


def train_bag_classifier(matrix: np.ndarray, index: dict, train: data.Split, dev: data.Split,
                         freeze: bool, epochs: int = 100, lr: float = 0.01, seed: int = 0) -> float:
    """Dev accuracy of a BagOfEmbeddings trained full-batch with Adam on ``train``.

    Vectors are scaled to unit length first, so frozen pretrained and random tables start equally loud.
    """
    torch.manual_seed(seed)
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-8)
    model = BagOfEmbeddings(unit, freeze)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    x, offsets = bag_inputs(train.texts, index)
    y = torch.tensor(train.labels)
    for _ in range(epochs):
        loss = nn.functional.cross_entropy(model(x, offsets), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        x, offsets = bag_inputs(dev.texts, index)
        predictions = model(x, offsets).argmax(-1)
    return float((predictions == torch.tensor(dev.labels)).float().mean())


def coverage(texts: list, index: dict) -> float:
    """Share of the words in ``texts`` that have a vector."""
    words = [w for t in texts for w in tokenize(t)]
    return sum(w in index for w in words) / len(words)
