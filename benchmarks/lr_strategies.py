"""Fine-tuning strategies and a learning-rate sweep for the pretrained MiniLM at one label budget.

Part 1, strategies: one rate for everything, head only (frozen body) at two rates, layer-wise decay,
discriminative rates by part (ULMFiT's slice) and gradual unfreezing — each through the course
trainer's settings (``course_lib.strategies``), on the same class-balanced labels, 3 seeds.
Part 2, the sweep: one rate for everything, 1e-5 to 1e-3, for the pretrained MiniLM and the same
architecture from random weights, one seed. Runs are appended to a JSON-lines file as they finish (rerun to
go on; ``--shard 0/2`` and ``--shard 1/2`` split the work between two processes).

    COURSE_DATA_DIR=../shared/data python benchmarks/lr_strategies.py --shard 0/2 --threads 1 &
    COURSE_DATA_DIR=../shared/data python benchmarks/lr_strategies.py --shard 1/2 --threads 1
    COURSE_DATA_DIR=../shared/data python benchmarks/lr_strategies.py --report

``--also "layer-wise decay" 3e-4`` adds a strategy at another head rate to the runs and the table (notebook 07,
exercise 5), without editing the library's list.
"""
import argparse
import json
from pathlib import Path

import course_lib
from course_lib import data, results, strategies
from course_lib.finetune import MINILM

RESULTS = Path(__file__).with_name("lr_strategies.jsonl")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--labels", type=int, default=500)
parser.add_argument("--seeds", type=int, default=3, help="seeds for the strategies")
parser.add_argument("--sweep-seeds", type=int, default=1)
parser.add_argument("--also", nargs=2, action="append", default=[], metavar=("STRATEGY", "LR"),
                    help=f"one more strategy at a head rate (repeatable); strategies: {', '.join(strategies.STRATEGIES)}")
results.add_benchmark_options(parser, RESULTS)
args = parser.parse_args()
for strategy, lr in args.also:
    if strategy not in strategies.STRATEGIES:
        parser.error(f"unknown strategy {strategy!r}; choose from {', '.join(strategies.STRATEGIES)}")
    try:
        float(lr)
    except ValueError:
        parser.error(f"--also {strategy!r} {lr!r}: the learning rate must be a number, e.g. 3e-4")
compared = strategies.COMPARED + [(strategy, "pretrained", float(lr)) for strategy, lr in args.also]


def key(row):
    """A row's job; its label count is part of it, so that runs at another ``--labels`` are not skipped."""
    return row["strategy"], row["start"], row["lr"], row["seed"], row["labels"]


def run_job(strategy, start, lr, seed, labels) -> dict:
    """One job; every strategy of a seed gets the same class-balanced draw of ``labels`` sentences."""
    train = sst2["train"].take(labels, seed=seed)
    return strategies.run_strategy(strategy, MINILM, start, train, sst2["dev"], lr, seed)


course_lib.setup(threads=args.threads)
if not args.report:
    sst2 = data.load("sst2")
    wanted = [(*run, seed, args.labels) for seed in range(args.seeds) for run in compared]
    wanted += [(*run, seed, args.labels) for seed in range(args.sweep_seeds) for run in strategies.SWEPT]
    results.run_grid(args.results, wanted, args.shard, key, run_job, describe=lambda row, *job: json.dumps(row))

rows = [r for r in results.read_results(args.results) if r["labels"] == args.labels]
print(f"Strategies, pretrained MiniLM, {args.labels} labels: SST-2 dev accuracy (%) mean ± sd (seeds)")
print(strategies.table(rows, compared))
print(f"\nLearning-rate sweep, one rate for everything, {args.labels} labels, {args.sweep_seeds} seed(s)")
for start, by_lr in strategies.sweep(rows, args.sweep_seeds).items():
    print(f"{start:10s}", "  ".join(f"{lr:.0e}: {acc:.1f}%" for lr, acc in by_lr.items()),
          f"-> best {max(by_lr, key=by_lr.get):.0e}")
