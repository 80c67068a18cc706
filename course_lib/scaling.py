"""A scaling law measured on this machine: small GPTs of several sizes, trained on the same tokens.

Kaplan et al. (2020) trained GPT-style models from 768 to 1.5 billion non-embedding parameters N
and found that, when neither data nor compute holds a model back, its test loss falls as a power of
its size: L(N) = (N_c / N)^α_N with α_N ≈ 0.076. At a fixed compute budget C there is a best size;
Hoffmann et al. (2022, "Chinchilla") put it at about 20 training tokens per parameter.

Here the same experiment is run small enough for a laptop CPU: GPTs of ``LAYERS`` layers and widths
``WIDTHS``, all with the course GPT's tokenizer, trained on the same SST-2 blocks in the same order
(``tokens`` grid: one pass each), and again at one fixed budget of FLOPs per run (``compute`` grid:
the smaller the model, the more tokens it sees). A power law is fitted in log-log space;
``NEXT_WIDTH`` is left out of the fit and trained to check what the fit predicts for it. Validation is
on SST-2's held-out sentences (``pretraining.corpus_blocks``), text no run trained on.

The training text is fixed, so what is measured is Kaplan et al.'s L(N, D) at one D (their eq. 1.5),
not L(N): the larger the model, the more the data, not the size, limits it.

``skipgram_stage`` prices the course BERT's first stage, the skip-gram word vectors, from the pairs
its history counted.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoTokenizer

from . import checkpoints, models, pretraining, word2vec
from .costs import flops_profile
from .objectives import causal_lm_collator
from .runtime import seed_everything
from .trainer import Trainer, TrainConfig

KAPLAN_ALPHA_N = 0.076  # L(N) exponent, non-embedding parameters (Kaplan et al. 2020, eq. 1.1)
KAPLAN_ALPHA_C = 0.050  # L(C) exponent along the compute-optimal frontier (Kaplan et al. 2020, eq. 1.3)
CHINCHILLA_TOKENS_PER_PARAMETER = 20  # compute-optimal training tokens per parameter (Hoffmann et al. 2022)

WIDTHS = (32, 48, 64, 96, 128, 192)  # the sizes the power law is fitted to
NEXT_WIDTH = 256                     # the next size up: predicted by the fit, then trained
LAYERS, HEAD_SIZE = 2, 16
BLOCK_SIZE, BATCH_SIZE, LR = 64, 16, 2e-3  # the course GPT's recipe (pretraining.RECIPES)
COMPUTE_BUDGET = 1.5e12                    # training FLOPs of every run in the fixed-compute grid
GRIDS = {"tokens": (*WIDTHS, NEXT_WIDTH),    # grid -> widths; at a fixed budget the best size is small,
         "compute": (16, 24, *WIDTHS, NEXT_WIDTH)}  # so that grid also tries narrower models


def shape(width: int) -> dict:
    return dict(layers=LAYERS, hidden=width, heads=max(1, width // HEAD_SIZE))


def tokenizer_and_blocks() -> tuple:
    """(tokenizer, train blocks, validation blocks): the course GPT's tokenizer over SST-2's sentences."""
    tokenizer = AutoTokenizer.from_pretrained(pretraining.course_checkpoint("gpt"))
    return (tokenizer, *pretraining.corpus_blocks(tokenizer, "sst2", BLOCK_SIZE))


def build(width: int, tokenizer, seed: int = 0):
    """A fresh GPT of the given width, no dropout (one pass over the data cannot overfit)."""
    seed_everything(seed)
    return pretraining.build_model("gpt", shape(width), tokenizer, BLOCK_SIZE)


def non_embedding_parameters(model) -> int:
    """Kaplan's N: every parameter except the token and position embeddings.

    The output layer is the token embedding matrix itself (tied), so it is left out too. At these
    sizes the embeddings are most of the model, which is why Kaplan et al. leave them out: with
    them in, the small models' losses do not line up on one power law.
    """
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    return sum(p.numel() for p in model.parameters() if id(p) not in embeddings)


def flops_per_step(model) -> float:
    """Training FLOPs of one batch, as the trainer counts them (``costs.flops_profile``)."""
    return flops_profile(model).batch(BATCH_SIZE * BLOCK_SIZE, BLOCK_SIZE)


def steps(grid: str, model, train_blocks: list) -> int:
    """Steps of a run: one pass over the blocks (``tokens``) or the fixed FLOP budget (``compute``)."""
    if grid == "tokens":
        return len(train_blocks) // BATCH_SIZE
    if grid == "compute":
        return max(1, round(COMPUTE_BUDGET / flops_per_step(model)))
    raise ValueError(f"grid must be one of {sorted(GRIDS)}, not {grid!r}")


def train(width: int, max_steps: int, tokenizer, train_blocks: list, eval_blocks: list, seed: int = 0,
          eval_every: int = 0, lr: float | None = None) -> tuple:
    """Train one size: (result row, trained model). The row: sizes, tokens, FLOPs, cost, final validation
    loss and its curve.

    Every size gets the same recipe (learning rate ``LR`` unless ``lr`` is given, warmup of a tenth of
    the run, cosine decay) and the same batches in the same order, so size is the only difference
    between two runs of a grid.
    """
    lr = LR if lr is None else lr
    model = build(width, tokenizer, seed)
    config = TrainConfig(max_steps=max_steps, batch_size=BATCH_SIZE, lr=lr, warmup_steps=max(1, max_steps // 10),
                         schedule="cosine", eval_every=eval_every, device="cpu", precision="fp32", seed=seed,
                         progress=False)
    trainer = Trainer(model, train_blocks, causal_lm_collator(tokenizer), config, eval_data=eval_blocks)
    trainer.fit()
    n, cost = non_embedding_parameters(model), trainer.cost
    row = {"width": width, "layers": LAYERS, "seed": seed, "lr": lr, "params_non_embedding": n,
            "params": models.count_parameters(model), "steps": max_steps, "tokens": cost.tokens,
            "flops": cost.flops, "flops_6nd": 6 * n * cost.tokens, "seconds": cost.seconds, "kwh": cost.kwh,
            "co2_kg": cost.co2_kg, "energy_method": cost.energy_method,
            "loss": trainer.history["eval"][-1]["loss"],
            "curve": [[e["step"], e["loss"]] for e in trainer.history["eval"]]}
    return row, model


def passes(tokens: int, train_blocks: list) -> float:
    """How many times a run that trained on ``tokens`` tokens went over the training blocks."""
    return tokens / (len(train_blocks) * BLOCK_SIZE)


# --- the skip-gram stage of the course BERT, priced ------------------------------------------------

def skipgram_stage(path) -> dict:
    """The first stage of a two-stage course checkpoint (``pretraining.word2vec_embeddings``), priced.

    The stage's (center, context) pairs are counted where they are drawn (``word2vec.train``) and kept
    in the checkpoint's history; each costs ``word2vec.flops_per_pair``. Returns {"epochs", "pairs",
    "flops_per_pair", "flops", "seconds"}. A checkpoint saved before the history kept the pairs is
    refused: retrain it (``python -m course_lib checkpoints``, after removing the old one).
    """
    stage = checkpoints.read_meta(path)["history"].get("word2vec")
    if stage is None:
        raise ValueError(f"{path} was trained without a skip-gram stage")
    if "pairs" not in stage:
        raise ValueError(f"{path} predates the skip-gram pair count in its history, so its first stage cannot be "
                         f"priced: remove it and retrain it (python -m course_lib checkpoints)")
    per_pair = word2vec.flops_per_pair(stage["dim"], stage["negatives"])
    return {"epochs": stage["epochs"], "pairs": stage["pairs"], "flops_per_pair": per_pair,
            "flops": float(stage["pairs"] * per_pair), "seconds": stage["seconds"]}


# --- fitting ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PowerLaw:
    """y = coefficient · x^-exponent, fitted by least squares on log y against log x."""
    coefficient: float
    exponent: float
    r2: float  # of the straight line in log-log space

    def __call__(self, x):
        return self.coefficient * np.asarray(x, dtype=float) ** -self.exponent

    def __str__(self) -> str:
        return f"loss ∝ N^-{self.exponent:.3f}, R² = {self.r2:.3f}"


def fit_power_law(x, y) -> PowerLaw:
    """The power law through points (x, y), both positive; at least three points."""
    log_x, log_y = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    if len(log_x) < 3:
        raise ValueError(f"a fit needs at least three points, not {len(log_x)}")
    slope, intercept = np.polyfit(log_x, log_y, 1)
    residual = log_y - (slope * log_x + intercept)
    r2 = 1 - (residual ** 2).sum() / ((log_y - log_y.mean()) ** 2).sum()
    return PowerLaw(coefficient=math.exp(intercept), exponent=-slope, r2=float(r2))


def best_size(params, losses, neighbours: int = 2) -> float | None:
    """The loss-minimising size at a fixed compute budget: a parabola's vertex in log N.

    Hoffmann et al. (2022, approach 2) fit parabolas to such "IsoFLOP" curves. A parabola only
    describes the curve near its minimum (far from it, the loss of starved large models climbs
    much faster), so it is fitted to the lowest point and up to ``neighbours`` sizes on each side.
    None when the lowest point is the smallest or largest size tried: then the minimum lies
    outside the grid.
    """
    order = np.argsort(params)
    log_n, losses = np.log(np.asarray(params, dtype=float)[order]), np.asarray(losses, dtype=float)[order]
    lowest = int(losses.argmin())
    if lowest in (0, len(losses) - 1):
        return None
    window = slice(max(0, lowest - neighbours), lowest + neighbours + 1)
    a, b, _ = np.polyfit(log_n[window], losses[window], 2)
    return math.exp(-b / (2 * a))


def frontier(rows: list) -> list:
    """(FLOPs, loss) points where some size reached a loss no cheaper point reached: the best loss per compute.

    Built from each run's validation curve (``curve``), priced at its FLOPs per step. A point in
    the middle of a run is scored with that run's learning rate not yet decayed, so the frontier
    sits a little above what runs stopped there would reach (Hoffmann et al. 2022 make this point).
    """
    points = sorted((row["flops"] / row["steps"] * step, loss) for row in rows for step, loss in row["curve"])
    best, kept = math.inf, []
    for flops, loss in points:
        if loss < best:
            best = loss
            kept.append((flops, loss))
    return kept
