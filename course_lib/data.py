"""The course's datasets: one registry, checksummed files, the same splits offline and online.

Where data comes from, in order:
1. the local mirror named by ``COURSE_DATA_DIR`` (what CI and offline classrooms use),
2. the Hugging Face Hub (what a learner with internet gets; skipped within seconds when
   offline mode is set or the Hub cannot be reached),
3. for SST-2 only, gensim's bundled 200-sentence Pang & Lee polarity sample, so the
   demo still runs on a machine with neither.

Every file read from the mirror or the course cache is checked against its sha256 first;
a mismatch is an error, never a silent fallback.
"""
import bz2
import csv
import hashlib
import os
import random
import re
import socket
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, DataError
from .runtime import cache_dir

MIRROR_ENV = "COURSE_DATA_DIR"

# sha256 of the mirror files, as published with the mirror (shared/data/README.md).
MIRROR_SHA256 = {
    "sst2/train.tsv": "e981ceb4fe6c9acd1c79851d0d091b9e78103f1f2a399ca83dda27915d41c56c",
    "sst2/dev.tsv": "84207e6be5873fb18db798cc6faec86871f5a426554650ff64a1c34e87665f6f",
    "sst2/test.tsv": "fcd46f967b7b8efd8b5398481dadf873886298d092195167af907fd532e81e1c",
    "korean-hate-speech/train.tsv": "ebebacdcd023af2c4acc8c0a37695fb6433ac04fc009feff8f222724e303a5a9",
    "korean-hate-speech/dev.tsv": "232b615d6e359a9d31dfb8370f32e1733dc5bb3f9c5430d34d7fcc7ba4b7e8ef",
    "korean-hate-speech/unlabeled_comments_5.txt": "e224a1d545c2729d8f9828429af0f6ee34cd9a4ac5861c7a12d4f32b9a9ed641",
}
HUB_IDS = {"sst2": "stanfordnlp/sst2"}
KOREAN_HATE_SPEECH_URL = "https://raw.githubusercontent.com/kocohub/korean-hate-speech/master/"
KOREAN_HATE_SPEECH_FILES = {  # mirror path -> path in the kocohub repository
    "korean-hate-speech/train.tsv": "labeled/train.tsv",
    "korean-hate-speech/dev.tsv": "labeled/dev.tsv",
    "korean-hate-speech/unlabeled_comments_5.txt": "unlabeled/unlabeled_comments_5.txt",
}
CANONICAL_SEED = 1234
# The labelled splits of each task as the mirror has them; the Hub's SST-2 has no labelled test
# split and the bundled sample only train and dev, so a loaded dataset may have fewer.
SPLITS = {"sst2": ("train", "dev", "test"), "korean_hate_speech": ("train", "dev")}
LABEL_NAMES = {"sst2": ["negative", "positive"], "korean_hate_speech": ["none", "offensive", "hate"]}
HUB_OFFLINE_ENVS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
HUB_PROBE_SECONDS = 3.0
SAMPLE_SOURCE = "bundled sample (gensim pang_lee_polarity.cor, 200 sentences)"


@dataclass
class Split:
    texts: list
    labels: list

    def __len__(self):
        return len(self.texts)

    def take(self, n: int, seed: int = 0) -> "Split":
        """A class-balanced subset of ``n`` examples: the label budget of an experiment.

        Where a class has fewer examples than its share, all of them are taken and the other classes
        fill its places (a small split, e.g. the bundled sample, still gives ``n`` examples). Where
        the balance is possible the draw is the one this method has always made, so published
        numbers (notebooks, benchmarks/RESULTS.md) stay reproducible.
        """
        counts = {label: self.labels.count(label) for label in sorted(set(self.labels))}
        if not 0 < n <= len(self):
            raise ConfigError(f"cannot draw {n} examples from a split of {len(self)} "
                              f"({', '.join(f'{c} labelled {label}' for label, c in counts.items())}); "
                              f"ask for 1 to {len(self)}")
        rng = random.Random(seed)
        by_label = {}
        for i in rng.sample(range(len(self)), len(self)):
            by_label.setdefault(self.labels[i], []).append(i)
        quotas = balanced_quotas(list(counts.values()), n)
        chosen = [i for k, label in enumerate(counts) for i in by_label[label][: quotas[k]]]
        rng.shuffle(chosen)
        return Split([self.texts[i] for i in chosen], [self.labels[i] for i in chosen])


def selection_split(train: Split, seed: int = 0, share: float = 0.2) -> tuple:
    """(fit, check): ``train`` cut in two, ``share`` of it held back to choose settings on — never the dev set."""
    order = random.Random(seed).sample(range(len(train)), len(train))
    cut = round(share * len(train))
    pick = lambda indices: Split([train.texts[i] for i in indices], [train.labels[i] for i in indices])  # noqa: E731
    return pick(order[cut:]), pick(order[:cut])


def balanced_quotas(sizes: list, n: int) -> list:
    """How many of ``n`` places each class gets: equal shares, the remainder to the first classes.

    A class smaller than its share gives all it has, and the other classes share out its places
    again. ``n`` must not exceed ``sum(sizes)``.
    """
    quotas = [None] * len(sizes)
    while True:
        open_ = [k for k, quota in enumerate(quotas) if quota is None]
        left = n - sum(quota for quota in quotas if quota is not None)
        fair = {k: left // len(open_) + (i < left % len(open_)) for i, k in enumerate(open_)}
        short = [k for k in open_ if sizes[k] < fair[k]]
        if not short:
            return [fair[k] if quota is None else quota for k, quota in enumerate(quotas)]
        for k in short:
            quotas[k] = sizes[k]


@dataclass
class LabeledDataset:
    name: str
    source: str
    label_names: list
    splits: dict

    def __getitem__(self, split: str) -> Split:
        if split not in self.splits:
            raise DataError(f"{self.name} from {self.source} has no labelled {split!r} split; "
                            f"it has {', '.join(self.splits)}")
        return self.splits[split]


# --- checksums and the two places files live --------------------------------------------

def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str) -> Path:
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(
            f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}. "
            "The file is corrupt or a different version; replace it with the original."
        )
    return path


def mirror_dir() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def mirror_file(relpath: str) -> Path:
    """A verified file from the mirror; a clear error if the mirror is unset or lacks it."""
    root = mirror_dir()
    if root is None:
        raise DataError(f"{MIRROR_ENV} is not set; point it at a copy of the course data (shared/data).")
    path = root / relpath
    if not path.is_file():
        raise DataError(f"{path} is missing: {MIRROR_ENV}={root} must contain {relpath}.")
    return verify(path, MIRROR_SHA256[relpath])


def write_cache(name: str, data: bytes) -> Path:
    """Write ``data`` into the cache atomically, with a sha256 sidecar for later reads."""
    path = cache_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)
    Path(f"{path}.sha256").write_text(hashlib.sha256(data).hexdigest())
    return path


def read_cache(name: str) -> bytes | None:
    """Cached bytes, or None if absent. A cached file that fails its checksum is deleted and refused."""
    path = cache_dir() / name
    sidecar = Path(f"{path}.sha256")
    if not (path.is_file() and sidecar.is_file()):
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sidecar.read_text().strip():
        path.unlink()
        sidecar.unlink()
        raise DataError(f"cached file {path} failed its checksum and was removed; run again to rebuild it.")
    return data


# --- canonical order ---------------------------------------------------------------------

def canonical(pairs) -> Split:
    """Sort, then shuffle with a fixed seed: any source's row order gives the same splits."""
    rows = sorted((" ".join(text.split()), int(label)) for text, label in pairs)
    random.Random(CANONICAL_SEED).shuffle(rows)
    return Split([t for t, _ in rows], [y for _, y in rows])


def read_tsv(path: Path) -> list:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


# --- SST-2 ---------------------------------------------------------------------------------

def load_sst2(source: str = "auto") -> LabeledDataset:
    """SST-2 (GLUE). ``source``: ``auto`` (mirror, Hub, bundled sample), ``mirror``, ``hub``, ``sample``."""
    loaders = {"mirror": _sst2_from_mirror, "hub": _sst2_from_hub, "sample": _sst2_from_gensim_sample}
    if source != "auto":
        return loaders[source]()
    if mirror_dir() is not None:
        return _sst2_from_mirror()  # a corrupt mirror is a problem to fix, not to route around
    reason = hub_unreachable()
    if reason is None:
        try:
            return _sst2_from_hub()
        except Exception as err:  # the Hub raises many kinds of network errors
            reason = f"loading from the Hub failed ({type(err).__name__})"
    print(f"SST-2: {MIRROR_ENV} is not set and {reason}; using the bundled 200-sentence sample.", file=sys.stderr)
    return _sst2_from_gensim_sample()


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot be used now, or None if it answers.

    Offline mode (``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``) is honoured, else one TCP connection to
    the Hub (or the configured proxy) must open within seconds: without this probe, ``datasets``
    spends half a minute on retries before it fails on a machine with no network.
    """
    for name in HUB_OFFLINE_ENVS:
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{name} is set"
    url = urllib.parse.urlsplit(urllib.request.getproxies().get("https")
                                or os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    errors = []

    def connect():
        try:
            port = url.port or (80 if url.scheme == "http" else 443)
            socket.create_connection((url.hostname, port), timeout=HUB_PROBE_SECONDS).close()
        except OSError as err:
            errors.append(err)

    probe = threading.Thread(target=connect, daemon=True)  # a thread bounds the name lookup too
    probe.start()
    probe.join(HUB_PROBE_SECONDS)
    if probe.is_alive() or errors:
        why = errors[0] if errors else f"no answer in {HUB_PROBE_SECONDS:.0f} s"
        return f"{url.hostname} cannot be reached ({why})"
    return None


def _sst2_from_mirror() -> LabeledDataset:
    splits = {}
    for split in SPLITS["sst2"]:
        rows = read_tsv(mirror_file(f"sst2/{split}.tsv"))
        text_column = "sentence" if "sentence" in rows[0] else "content"
        splits[split] = canonical((r[text_column], r["label"]) for r in rows)
    return LabeledDataset("sst2", f"local mirror ({MIRROR_ENV})", LABEL_NAMES["sst2"], splits)


def _sst2_from_hub() -> LabeledDataset:
    import datasets

    hub = datasets.load_dataset(HUB_IDS["sst2"])
    splits = {
        "train": canonical(zip(hub["train"]["sentence"], hub["train"]["label"])),
        "dev": canonical(zip(hub["validation"]["sentence"], hub["validation"]["label"])),
    }  # the Hub's test split has no labels
    return LabeledDataset("sst2", f"Hugging Face Hub ({HUB_IDS['sst2']})", LABEL_NAMES["sst2"], splits)


def _sst2_from_gensim_sample() -> LabeledDataset:
    """gensim's 200 Pang & Lee movie-review sentences (the source SST was built from)."""
    pairs = []
    for line in Path(gensim_file("pang_lee_polarity.cor")).read_text(encoding="latin-1").splitlines():
        tag, _, text = line.partition(" ")
        pairs.append((text, tag == "__label__pos"))
    rows = canonical(pairs)
    cut = 140
    splits = {"train": Split(rows.texts[:cut], rows.labels[:cut]), "dev": Split(rows.texts[cut:], rows.labels[cut:])}
    return LabeledDataset("sst2", SAMPLE_SOURCE, LABEL_NAMES["sst2"], splits)


# --- Korean hate speech ---------------------------------------------------------------------

def korean_file(relpath: str) -> Path:
    """A verified Korean-corpus file: from the mirror, else downloaded once into the cache."""
    if mirror_dir() is not None:
        return mirror_file(relpath)
    name = f"downloads/{relpath}"
    if read_cache(name) is None:
        import urllib.request

        url = KOREAN_HATE_SPEECH_URL + KOREAN_HATE_SPEECH_FILES[relpath]
        try:
            data = urllib.request.urlopen(url, timeout=30).read()
        except OSError as err:
            raise DataError(f"could not download {url} ({err}); set {MIRROR_ENV} to a local copy.") from err
        if hashlib.sha256(data).hexdigest() != MIRROR_SHA256[relpath]:
            raise DataError(f"{url} does not match the expected sha256; nothing was cached.")
        write_cache(name, data)
    return cache_dir() / name


def load_korean_hate_speech() -> LabeledDataset:
    """Korean news comments labelled none / offensive / hate (Moon et al., 2020). Offensive by design."""
    names, splits = LABEL_NAMES["korean_hate_speech"], {}
    for split in SPLITS["korean_hate_speech"]:
        rows = read_tsv(korean_file(f"korean-hate-speech/{split}.tsv"))
        splits[split] = canonical((r["comments"], names.index(r["hate"])) for r in rows)
    return LabeledDataset("korean_hate_speech", "kocohub/korean-hate-speech", names, splits)


def korean_unlabeled_comments() -> list:
    path = korean_file("korean-hate-speech/unlabeled_comments_5.txt")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- text that pip ships with gensim -----------------------------------------------------------

WIKI_DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def gensim_file(name: str) -> str:
    """Path of a file in gensim's test data (corpora, analogy and similarity sets)."""
    from gensim.test.utils import datapath

    path = datapath(name)
    if not os.path.isfile(path):
        raise DataError(f"gensim does not ship {name}; reinstall it with `pip install -r requirements.txt`.")
    return path


def wiki_paragraphs(min_article_chars: int = 500) -> list:
    """Plain-text paragraphs of gensim's shortened English Wikipedia dump (~100 articles, ~3 MB).

    Markup is removed with gensim's own ``filter_wiki``; the cleaned text is cached.
    """
    name = f"wiki_sample_min{min_article_chars}.txt"
    cached = read_cache(name)
    if cached is None:
        cached = "\n".join(_clean_wiki(min_article_chars)).encode("utf-8")
        write_cache(name, cached)
    return cached.decode("utf-8").split("\n")


def _clean_wiki(min_article_chars: int):
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    with bz2.open(gensim_file(WIKI_DUMP), "rt", encoding="utf-8") as dump:
        for _title, markup, _page_id in extract_pages(dump):
            text = filter_wiki(markup)
            if len(text) < min_article_chars:
                continue
            for line in text.split("\n"):
                line = re.sub(r"'{2,}", "", line).strip()
                if len(line.split()) >= 5 and not line.startswith(("=", "|", "!", "{", "*", "#")):
                    yield line


def lee_corpus() -> list:
    """The Lee background news corpus (300 short documents), one document per item."""
    return Path(gensim_file("lee_background.cor")).read_text(encoding="latin-1").splitlines()


def next_sentence_pairs(documents: list, n: int, seed: int = 0) -> tuple:
    """(firsts, seconds, labels): ``n`` sentence pairs, label 1 when the second sentence follows the first in one of
    ``documents``, 0 when it was drawn from another document; half of each, in a shuffled order.

    BERT's next-sentence prediction built the same way (Devlin et al. 2019, section 3.1): a pair task whose
    labels cost nothing. Sentences are cut at a full stop, question or exclamation mark before a space.
    """
    rng = random.Random(seed)
    sentences = [[s for s in re.split(r"(?<=[.!?])\s+", doc.strip()) if len(s.split()) >= 4] for doc in documents]
    following = [(d, i) for d, doc in enumerate(sentences) for i in range(len(doc) - 1)]
    if len(following) < n or len(documents) < 2:
        raise ConfigError(f"{len(documents)} documents give {len(following)} pairs of neighbouring sentences; "
                          f"{n} were asked for")
    pairs = []
    for k, (d, i) in enumerate(rng.sample(following, n)):
        if k % 2:
            pairs.append((sentences[d][i], sentences[d][i + 1], 1))
        else:
            other = rng.choice([e for e in range(len(sentences)) if e != d and sentences[e]])
            pairs.append((sentences[d][i], rng.choice(sentences[other]), 0))
    rng.shuffle(pairs)
    firsts, seconds, labels = (list(column) for column in zip(*pairs))
    return firsts, seconds, labels


# --- the registry ----------------------------------------------------------------------------

REGISTRY = {
    "sst2": load_sst2,
    "korean_hate_speech": load_korean_hate_speech,
    "korean_unlabeled": korean_unlabeled_comments,
    "wiki": wiki_paragraphs,
    "lee": lee_corpus,
}


def load(name: str, **kwargs):
    """Load any course dataset by name: ``load("sst2")``, ``load("wiki")``…"""
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; the course has {sorted(REGISTRY)}")
    return REGISTRY[name](**kwargs)
