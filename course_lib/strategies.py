"""Fine-tuning strategies: which parts of a pretrained model train, and at which learning rates.

All of them are settings of the course trainer (``TrainConfig``) over ``optim``'s layer groups —
embeddings (group 0), transformer layers (1..L), head (L+1) — not separate training loops:

- one rate for everything (BERT's recipe);
- head only: the body frozen, a linear classifier on its features (feature extraction);
- layer-wise decay: each layer down from the head trains ``decay`` times slower (ELECTRA, BEiT);
- discriminative rates by part: embeddings, body and head at rates spaced from ``lr x slice`` to
  ``lr`` (ULMFiT's ``slice``);
- gradual unfreezing: the head first, then one more group every few steps (ULMFiT).
"""
import statistics
import time

from . import models, optim
from .errors import ConfigError
from .finetune import finetune, load_classifier, recipe
from .runtime import seed_everything

LAYER_DECAY, LR_SLICE = 0.8, 0.1


def gradual_unfreezing(steps: int, n_groups: int) -> dict:
    """The trainer's ``unfreeze`` schedule: the head alone, then one more group each interval, all by half-way."""
    interval = max(1, steps // (2 * (n_groups - 1)))
    schedule = {i * interval: i + 1 for i in range(n_groups - 1)}
    schedule[(n_groups - 1) * interval] = None  # None: every group trains
    return schedule


def settings(strategy: str, steps: int, n_groups: int) -> dict:
    """``TrainConfig`` fields for a strategy, for a run of ``steps`` on a model with ``n_groups`` groups."""
    return {
        "one rate": {},
        "head only": {"unfreeze": {0: 1}},
        "layer-wise decay": {"layer_decay": LAYER_DECAY},
        "discriminative by part": {"lr_slice": LR_SLICE},
        "gradual unfreezing": {"unfreeze": gradual_unfreezing(steps, n_groups)},
    }[strategy]


STRATEGIES = ("one rate", "head only", "layer-wise decay", "discriminative by part", "gradual unfreezing")


def run_strategy(strategy: str, checkpoint, start: str, train, dev, lr: float, seed: int = 0) -> dict:
    """Fine-tune with one strategy; dev accuracy, trainable parameters at the start and the end, wall time."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")
    seed_everything(seed)
    begin = time.perf_counter()
    model, tokenizer = load_classifier(checkpoint, start=start)
    steps = recipe(len(train), lr).max_steps
    config = recipe(len(train), lr, seed, **settings(strategy, steps, optim.num_layers(model) + 2))
    optim.freeze_to(model, optim.trainable_groups_to_k(model, config.unfreeze.get(0)))  # what trains at step 0
    trainable_at_start = models.count_parameters(model, trainable_only=True)
    trainer = finetune(model, tokenizer, train, dev, config)
    return {"strategy": strategy, "start": start, "lr": lr, "labels": len(train), "seed": seed,
            "dev": trainer.history["eval"][-1]["accuracy"], "trainable_at_start": trainable_at_start,
            "params": models.count_parameters(model), "steps": trainer.step, "flops": trainer.cost.flops,
            "seconds": time.perf_counter() - begin}


# The comparison notebook 07 reads from benchmarks/lr_strategies.jsonl: (strategy, start, rate at the head).
COMPARED = [(s, "pretrained", 1e-4) for s in STRATEGIES] + [("head only", "pretrained", 1e-3)]
SWEEP_RATES = (1e-5, 1e-4, 3e-4, 1e-3)
SWEPT = [("one rate", start, lr) for start in ("pretrained", "scratch") for lr in SWEEP_RATES]


def _runs(rows: list, strategy: str, start: str, lr: float, seeds: int | None = None) -> list:
    return [r for r in rows if (r["strategy"], r["start"], r["lr"]) == (strategy, start, lr)
            and (seeds is None or r["seed"] < seeds)]


def table(rows: list, compared: list = COMPARED) -> str:
    """The runs of ``compared`` (strategy, start, lr): dev accuracy mean ± sd (seeds), share trainable at step 0, wall time."""
    lines = [f"{'strategy':<24}{'lr (head)':>10}{'dev accuracy':>19}{'trainable at step 0':>21}{'wall time':>11}"]
    for strategy, start, lr in compared:
        runs = _runs(rows, strategy, start, lr)
        if runs:
            accs = [100 * r["dev"] for r in runs]
            spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
            lines.append(f"{strategy:<24}{lr:>10.0e}{statistics.mean(accs):>10.1f} ±{spread:4.1f} (n={len(runs)})"
                         f"{100 * runs[0]['trainable_at_start'] / runs[0]['params']:>20.1f}%"
                         f"{statistics.mean(r['seconds'] for r in runs):>10.0f}s")
    return "\n".join(lines)


def sweep(rows: list, seeds: int = 1) -> dict:
    """{start: {lr: mean dev accuracy in %}} of the one-rate sweep, over the first ``seeds`` seeds."""
    result = {}
    for strategy, start, lr in SWEPT:
        runs = _runs(rows, strategy, start, lr, seeds)
        if runs:
            result.setdefault(start, {})[lr] = statistics.mean(100 * r["dev"] for r in runs)
    return result
