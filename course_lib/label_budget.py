"""How many labels does pretraining save? Accuracy against the number of labels, per starting point.

Each *arm* is a model and where its weights start: the real pretrained MiniLM, the course's own
BERT from notebook 06, each of them from random weights, and a TF-IDF + logistic-regression
baseline (a strong control: no curve looks good only because its rival is weak). Every arm sees the
same class-balanced labels for a given budget and seed, and is scored on SST-2 dev.

A run is one (arm, budget, seed); the benchmark appends runs to a JSON-lines results file
(``course_lib.results``) as they finish.
"""
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from . import pretraining
from .data import Split
from .errors import ConfigError
from .finetune import MINILM, encode, finetune, learning_rate, load_classifier, recipe
from .runtime import seed_everything

BUDGETS = (50, 100, 200, 500, 1000, 2000, 5000)
TFIDF = "TF-IDF + logistic regression"


@dataclass(frozen=True)
class Arm:
    """A model and its starting weights, fine-tuned by ``finetune.recipe`` at the rate the course gives that start."""
    name: str
    model: str  # "minilm", "course-bert" or a checkpoint directory
    start: str  # one of finetune.STARTS

    def checkpoint(self):
        if self.model == MINILM:
            return MINILM
        return pretraining.course_checkpoint("bert") if self.model == "course-bert" else Path(self.model)

    @property
    def lr(self) -> float:
        return learning_rate(MINILM if self.model == MINILM else "course", self.start)


ARMS = {arm.name: arm for arm in (
    Arm("MiniLM, pretrained", MINILM, "pretrained"),
    Arm("MiniLM, random weights", MINILM, "scratch"),
    Arm("course BERT, pretrained", "course-bert", "pretrained"),
    Arm("course BERT, random weights", "course-bert", "scratch"),
)}


def run_arm(arm: Arm, train: Split, dev: Split, seed: int = 0, test: Split | None = None) -> dict:
    """Fine-tune one arm on ``train``; its dev accuracy (and test accuracy, given ``test``) and cost."""
    seed_everything(seed)
    start = time.perf_counter()
    model, tokenizer = load_classifier(arm.checkpoint(), start=arm.start)
    trainer = finetune(model, tokenizer, train, dev, recipe(len(train), arm.lr, seed))
    row = {"arm": arm.name, "labels": len(train), "seed": seed, "dev": trainer.history["eval"][-1]["accuracy"],
           "steps": trainer.step, "flops": trainer.cost.flops}
    if test is not None:
        row["test"] = trainer.evaluate(encode(tokenizer, test))["accuracy"]
    row["seconds"] = time.perf_counter() - start
    return row


def tfidf_classifier(train: Split, analyzer: str = "word", ngram_range: tuple = (1, 2), scoring: str = "accuracy"):
    """TF-IDF features and logistic regression, fitted on ``train``; its regularisation is chosen by 5-fold CV.

    ``analyzer="char_wb"`` counts character n-grams inside words instead: for Korean, where a word
    carries its particles and endings (notebook 11).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline

    folds = min(5, min(train.labels.count(c) for c in set(train.labels)))
    model = make_pipeline(TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, sublinear_tf=True),
                          LogisticRegressionCV(Cs=10, cv=folds, max_iter=2000, l1_ratios=(0.0,),
                                               scoring=scoring, use_legacy_attributes=False))
    return model.fit(train.texts, train.labels)


def run_tfidf(train: Split, dev: Split, seed: int = 0, test: Split | None = None) -> dict:
    """Word and bigram TF-IDF features, logistic regression with its regularisation chosen by 5-fold CV."""
    start = time.perf_counter()
    model = tfidf_classifier(train)
    row = {"arm": TFIDF, "labels": len(train), "seed": seed, "dev": model.score(dev.texts, dev.labels)}
    if test is not None:
        row["test"] = model.score(test.texts, test.labels)
    row["seconds"] = time.perf_counter() - start
    return row


def run(arm_name: str, sst2, labels: int, seed: int, with_test: bool = False) -> dict:
    """One run of the grid: ``labels`` balanced training sentences drawn with ``seed``."""
    train = sst2["train"].take(labels, seed=seed)
    test = sst2["test"] if with_test else None
    if arm_name == TFIDF:
        return run_tfidf(train, sst2["dev"], seed, test)
    if arm_name not in ARMS:
        raise ConfigError(f"unknown arm {arm_name!r}; choose from {sorted([*ARMS, TFIDF])}")
    return run_arm(ARMS[arm_name], train, sst2["dev"], seed, test)


def summarise(rows: list, metric: str = "dev") -> dict:
    """{arm: {labels: (mean, standard deviation, number of seeds)}} of ``metric`` in percent."""
    values = {}
    for row in rows:
        if row.get(metric) is not None:
            values.setdefault(row["arm"], {}).setdefault(row["labels"], []).append(100 * row[metric])
    return {arm: {n: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
                  for n, v in sorted(by_n.items())}
            for arm, by_n in values.items()}


def smallest_budget(curve: dict, target: float) -> int | None:
    """The smallest measured budget whose mean accuracy reaches ``target`` (None if none does)."""
    return next((budget for budget, (mean, _, _) in curve.items() if mean >= target), None)


def labels_saved(summary: dict, pretrained: str, scratch: str, reference: int = 5000) -> tuple:
    """(ratio, budget): the smallest budget at which ``pretrained`` matches ``scratch`` at ``reference`` labels.

    Measured budgets only, no interpolation: the ratio is ``reference / budget``. (None, None) if the
    pretrained arm never matches.
    """
    budget = smallest_budget(summary[pretrained], summary[scratch][reference][0])
    return (reference / budget, budget) if budget else (None, None)


def table(summary: dict) -> str:
    """Mean ± spread per arm and budget, in a fixed-width text table."""
    budgets = sorted({n for by_n in summary.values() for n in by_n})
    lines = [f"{'labels':<30}" + "".join(f"{n:>12,}" for n in budgets)]
    for arm, by_n in summary.items():
        cells = [f"{by_n[n][0]:6.1f} ±{by_n[n][1]:4.1f}" if n in by_n else "" for n in budgets]
        lines.append(f"{arm:<30}" + "".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)


def plot(summary: dict, ax=None, title: str = "", ylabel: str = "SST-2 dev accuracy (%)", chance: float | None = 50,
         xlabel: str = "labelled training sentences (log scale)", rows: list | None = None, metric: str = "dev"):
    """A score against labels (log scale): the mean of each arm, TF-IDF arms dashed.

    Without ``rows`` a band shows ± one standard deviation; with them (the runs ``summary`` was made
    from) every run is a dot instead — honest where an arm's runs split into groups that a band
    would draw as outcomes that never happened.
    """
    import matplotlib.pyplot as plt
    ax = ax if ax is not None else plt.subplots(figsize=(7, 4.5))[1]
    for arm, by_n in summary.items():
        budgets = list(by_n)
        means = [by_n[n][0] for n in budgets]
        style = dict(linestyle="--", color="grey") if "TF-IDF" in arm else {}
        ax.plot(budgets, means, marker="o", label=arm, **style)
        color = ax.lines[-1].get_color()
        if rows is None:
            spreads = [by_n[n][1] for n in budgets]
            ax.fill_between(budgets, [m - s for m, s in zip(means, spreads)],
                            [m + s for m, s in zip(means, spreads)], alpha=0.15, color=color)
        else:
            runs = [r for r in rows if r["arm"] == arm and r.get(metric) is not None]
            ax.scatter([r["labels"] for r in runs], [100 * r[metric] for r in runs], s=12, alpha=0.5, color=color)
    if chance is not None:
        ax.axhline(chance, color="black", linewidth=0.8, linestyle=":", label=f"chance ({chance:g}%)")
    ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax
