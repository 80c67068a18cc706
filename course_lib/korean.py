"""Korean (한국어): the units of Hangul text, and the course's pipeline on Korean comments (notebook 11).

Two halves. The units: a Hangul syllable is arithmetic on three letters (jamo), morphemes come from
Kiwi, a maintained Korean analyser on PyPI, and subwords from the course's own tokenizer trainers;
``unit_stats`` counts what each choice gives a model. The pipeline: the course's two-stage BERT
pretrained on the corpus's unlabelled comments (33,893 lines, 28,688 distinct, every 20th held out;
``pretraining.RECIPES["korean-bert", ...]``),
fine-tuned on hate / offensive / none at several label budgets against the same model from random
weights and a character n-gram TF-IDF baseline, scored by macro-F1 (the classes are imbalanced).
"""
import functools
import time
import unicodedata

from . import finetune, label_budget, pretraining
from .data import Split, selection_split
from .errors import ConfigError
from .runtime import seed_everything

# --- Hangul: a syllable is three letters ------------------------------------------------------

# Unicode orders the 11,172 syllables 가..힣 by initial, then medial, then final letter:
# code point = 0xAC00 + (initial * 21 + medial) * 28 + final, with final 0 meaning "none".
SYLLABLE_BASE, SYLLABLE_COUNT = 0xAC00, 11172
INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
FINALS = ("", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ", "ㄿ", "ㅀ", "ㅁ", "ㅂ",
          "ㅄ", "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ")


def is_syllable(char: str) -> bool:
    return len(char) == 1 and 0 <= ord(char) - SYLLABLE_BASE < SYLLABLE_COUNT


def decompose(syllable: str) -> tuple:
    """(initial, medial, final) letters of one Hangul syllable; final is "" when there is none."""
    if not is_syllable(syllable):
        raise ValueError(f"{syllable!r} is not a precomposed Hangul syllable (가..힣)")
    index = ord(syllable) - SYLLABLE_BASE
    return INITIALS[index // (21 * 28)], MEDIALS[index // 28 % 21], FINALS[index % 28]


def compose(initial: str, medial: str, final: str = "") -> str:
    """The syllable of three letters: the inverse of ``decompose``."""
    return chr(SYLLABLE_BASE + (INITIALS.index(initial) * 21 + MEDIALS.index(medial)) * 28 + FINALS.index(final))


def to_jamo(text: str) -> str:
    """``text`` with every syllable spelled out in letters (other characters unchanged)."""
    return "".join("".join(decompose(c)) if is_syllable(c) else c for c in text)


def ljust(text: str, width: int) -> str:
    """``text`` padded to ``width`` columns of a monospaced screen, where a Hangul block takes two."""
    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - columns)


# --- units of text: what each way of cutting a comment gives a model -----------------------------

def syllables(text: str) -> list:
    """Every character but spaces: for Hangul, one syllable block each."""
    return [c for c in text if not c.isspace()]


def jamo(text: str) -> list:
    """Every letter: each syllable spelled out (``to_jamo``), spaces dropped."""
    return syllables(to_jamo(text))


@functools.cache
def kiwi():
    """Kiwi, the morphological analyser, loaded once per process (its model takes a moment to load)."""
    from kiwipiepy import Kiwi

    return Kiwi(num_workers=1)


def morphemes(text: str) -> list:
    """Morphemes by Kiwi: stems, particles and endings; a morpheme may be one letter of a syllable (할 = 하 + ㄹ)."""
    return [token.form for token in kiwi().tokenize(text, compatible_jamo=True)]


# Coarse word classes for notebook 12's token-level task, from the tag of a word's first morpheme (Kiwi's tags are
# the Sejong tag set's: NNG common noun, VV verb, VA adjective, MAG adverb, MM determiner, IC interjection, ...).
WORD_CLASSES = ("noun", "verb", "adjective", "adverb", "determiner", "interjection", "other")
_CLASS_OF_TAG = {"NNG": "noun", "NNP": "noun", "NNB": "noun", "NP": "noun", "NR": "noun", "XR": "noun",
                 "VV": "verb", "VX": "verb", "VA": "adjective", "VCN": "adjective", "MAG": "adverb",
                 "MAJ": "adverb", "MM": "determiner", "IC": "interjection"}


def word_classes(text: str) -> tuple:
    """(words, classes): ``text`` split at spaces, each word (어절) with the class of its first morpheme by Kiwi.

    Silver labels: a tagger's output, not a person's. Kiwi reads the whole sentence, so a word's analysis
    can use its neighbours; an irregular stem's tag (``VV-I``, ``VA-R``) counts as its base tag.
    """
    words, starts, position = text.split(), [], 0
    for word in words:
        position = text.index(word, position)
        starts.append(position)
        position += len(word)
    first_tag = {}
    for token in kiwi().tokenize(text):
        for i, start in enumerate(starts):
            if start <= token.start < start + len(words[i]):
                first_tag.setdefault(i, token.tag.split("-")[0])
    return words, [_CLASS_OF_TAG.get(first_tag.get(i), "other") for i in range(len(words))]


def is_fallback(unit: str) -> bool:
    """A piece smaller than a character as written: a letter split off a syllable, or part of a character's bytes.

    MiniLM's English WordPiece decomposes each syllable into conjoining letters (U+1100-U+11FF) before it
    looks anything up; a byte-level BPE shows an incomplete UTF-8 sequence as U+FFFD once decoded.
    """
    return any(0x1100 <= ord(c) <= 0x11FF or c == "\ufffd" for c in unit)


def subword_units(tokenizer):
    """``tokenizer``'s pieces of a text as characters (a byte-level BPE's are bytes until decoded); ▁ marks a space."""
    def units(text: str) -> list:
        return [tokenizer.convert_tokens_to_string([t]).replace(" ", "▁") for t in tokenizer.tokenize(text)]
    return units


def unit_stats(segment, train: list, dev: list, unknown: str | None = None) -> dict:
    """What one way of cutting text gives a model, measured on ``dev`` with ``train`` as what it has seen.

    ``per_comment``/``p99``: units per comment (mean, 99th percentile): sequence length, and attention's
    cost grows with its square. ``distinct``: different units in ``train``, the table of vectors a model
    needs for them. ``unseen``: share of dev units that never occur in ``train``. ``unknown``: share that
    is the tokenizer's unknown token. ``fallback``: share of pieces smaller than a character.
    """
    import numpy as np

    seen = {u for text in train for u in segment(text)}
    cut = [segment(text) for text in dev]
    units = [u for c in cut for u in c]
    lengths = [len(c) for c in cut]
    return {"per_comment": float(np.mean(lengths)), "p99": float(np.percentile(lengths, 99)),
            "distinct": len(seen), "unseen": sum(u not in seen for u in units) / len(units),
            "unknown": sum(u == unknown for u in units) / len(units),
            "fallback": sum(map(is_fallback, units)) / len(units)}


# --- fine-tuning on hate / offensive / none, scored by macro-F1 --------------------------------

CHECKPOINT = "korean-bert"  # the key of its recipe in pretraining.RECIPES
PRETRAINED, EMBEDDINGS, SCRATCH = "Korean BERT, pretrained", "Korean BERT, embeddings only", "Korean BERT, random weights"
STARTS = {PRETRAINED: "pretrained", EMBEDDINGS: "embeddings", SCRATCH: "scratch"}  # arm -> finetune.STARTS
TFIDF = "TF-IDF, character n-grams"
BUDGETS = (500, 1000, 7896)  # 7,896 = every labelled training comment
MAX_LENGTH = 64  # WordPiece tokens; notebook 11 (section 2.3) shows how few comments are longer


def scores(labels: list, predictions: list) -> dict:
    """Macro-F1 (each class's F1, averaged with equal weight), accuracy, and the confusion matrix."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    return {"macro_f1": f1_score(labels, predictions, average="macro"),
            "accuracy": accuracy_score(labels, predictions),
            "confusion": confusion_matrix(labels, predictions, labels=[0, 1, 2]).tolist()}


def run_start(start: str, train: Split, dev: Split, seed: int = 0, checkpoint=None, **overrides) -> dict:
    """Fine-tune the Korean BERT from one of ``finetune.STARTS`` by ``finetune.recipe``; score on ``dev``."""
    began = time.perf_counter()
    seed_everything(seed)
    checkpoint = checkpoint or pretraining.course_checkpoint(CHECKPOINT)
    model, tokenizer = finetune.load_classifier(checkpoint, num_labels=3, start=start)
    config = finetune.recipe(len(train), overrides.pop("lr", finetune.learning_rate(CHECKPOINT, start)), seed,
                             **overrides)
    trainer = finetune.finetune(model, tokenizer, train, dev, config, max_length=MAX_LENGTH)
    predictions = finetune.predict(model, tokenizer, dev.texts, max_length=MAX_LENGTH)
    return {"labels": len(train), "seed": seed, **scores(dev.labels, predictions), "steps": trainer.step,
            "flops": trainer.cost.flops, "seconds": time.perf_counter() - began}


RATES = (3e-4, 1e-3, 3e-3, 1e-2)  # the learning rates tried by select_learning_rate


def select_learning_rate(task, labels: int = 1000, seed: int = 0, rates=RATES) -> list:
    """Macro-F1 of every start at every rate, fine-tuned on 80% of ``labels`` training comments, scored on the other 20%.

    The rate is chosen on labels the fine-tuning did not see and the dev set stays untouched: choosing
    it on the dev set that is then reported would flatter the report (notebook 11, section 4).
    """
    fit, check = selection_split(task["train"].take(labels, seed=seed), seed)
    return [{"start": start, "lr": lr, **run_start(start, fit, check, seed, lr=lr)}
            for start in ("pretrained", "embeddings", "scratch") for lr in rates]


def run_tfidf(train: Split, dev: Split, seed: int = 0) -> dict:
    """Character 1-3-grams within words, the regularisation of the logistic regression chosen by macro-F1."""
    began = time.perf_counter()
    model = label_budget.tfidf_classifier(train, analyzer="char_wb", ngram_range=(1, 3), scoring="f1_macro")
    return {"labels": len(train), "seed": seed, **scores(dev.labels, model.predict(dev.texts).tolist()),
            "seconds": time.perf_counter() - began}


def run(arm: str, task, labels: int, seed: int) -> dict:
    """One run of the benchmark's grid: ``labels`` class-balanced training comments drawn with ``seed``."""
    train = task["train"].take(labels, seed=seed)
    if arm == TFIDF:
        return {"arm": arm, **run_tfidf(train, task["dev"], seed)}
    if arm not in STARTS:
        raise ConfigError(f"unknown arm {arm!r}; choose from {sorted([*STARTS, TFIDF])}")
    return {"arm": arm, **run_start(STARTS[arm], train, task["dev"], seed)}


def gain(summary: dict, labels: int = 1000) -> float:
    """Points of mean macro-F1 the pretrained start gains over random weights at ``labels`` (``label_budget.summarise``)."""
    means = [summary.get(arm, {}).get(labels) for arm in (PRETRAINED, SCRATCH)]
    if None in means:
        raise ConfigError(f"the results lack {PRETRAINED!r} or {SCRATCH!r} at {labels:,} labels; run them first")
    return means[0][0] - means[1][0]
