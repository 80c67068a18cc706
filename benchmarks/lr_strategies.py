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
"""
import argparse
import json
import statistics
from pathlib import Path

import course_lib
from course_lib import data, label_budget as lb, strategies
from course_lib.finetune import MINILM

RESULTS = Path(__file__).with_name("lr_strategies.jsonl")
# (strategy, start, rate at the head) -> seeds
STRATEGY_RUNS = [(s, "pretrained", 1e-4) for s in strategies.STRATEGIES] + [("head only", "pretrained", 1e-3)]
SWEEP_RATES = (1e-5, 1e-4, 3e-4, 1e-3)
SWEEP_RUNS = [("one rate", start, lr) for start in ("pretrained", "scratch") for lr in SWEEP_RATES]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--labels", type=int, default=500)
parser.add_argument("--seeds", type=int, default=3, help="seeds for the strategies")
parser.add_argument("--sweep-seeds", type=int, default=1)
parser.add_argument("--shard", default="0/1", help="i/n: run every n-th job starting at i")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--report", action="store_true", help="print the tables from the results file; run nothing")
parser.add_argument("--results", type=Path, default=RESULTS)
args = parser.parse_args()


def key(row):
    return row["strategy"], row["start"], row["lr"], row["seed"]


course_lib.setup(threads=args.threads)
if not args.report:
    sst2 = data.load("sst2")
    done = {key(r) for r in lb.read_results(args.results) if r["labels"] == args.labels}
    wanted = [(*run, seed) for seed in range(args.seeds) for run in STRATEGY_RUNS]
    wanted += [(*run, seed) for seed in range(args.sweep_seeds) for run in SWEEP_RUNS]
    shard, shards = map(int, args.shard.split("/"))  # shards split the whole grid: they may start at different times
    jobs = [job for job in list(dict.fromkeys(wanted))[shard::shards] if job not in done]
    for strategy, start, lr, seed in jobs:
        train = sst2["train"].take(args.labels, seed=seed)
        row = strategies.run_strategy(strategy, MINILM, start, train, sst2["dev"], lr, seed)
        lb.append_result(args.results, row)
        print(json.dumps(row), flush=True)

rows = [r for r in lb.read_results(args.results) if r["labels"] == args.labels]


def cell(runs):
    accs = [100 * r["dev"] for r in runs]
    spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return f"{statistics.mean(accs):5.1f} ±{spread:4.1f} ({len(accs)})"


print(f"Strategies, pretrained MiniLM, {args.labels} labels: SST-2 dev accuracy (%) mean ± sd (seeds)")
print(f"{'strategy':<24}{'head lr':>9}{'accuracy':>18}{'trainable at start':>20}{'wall time':>11}")
for strategy, start, lr in STRATEGY_RUNS:
    runs = [r for r in rows if (r["strategy"], r["start"], r["lr"]) == (strategy, start, lr)]
    if runs:
        trainable = runs[0]["trainable_at_start"] / runs[0]["params"]
        seconds = statistics.mean(r["seconds"] for r in runs)
        print(f"{strategy:<24}{lr:>9.0e}{cell(runs):>18}{100 * trainable:>19.1f}%{seconds:>10.0f}s")
print(f"\nLearning-rate sweep, one rate for everything, {args.labels} labels")
print(f"{'lr':<8}" + "".join(f"{start:>20}" for start in ("pretrained", "scratch")))
best = {}
for lr in SWEEP_RATES:
    cells = []
    for start in ("pretrained", "scratch"):
        runs = [r for r in rows if (r["strategy"], r["start"], r["lr"]) == ("one rate", start, lr)
                and r["seed"] < args.sweep_seeds]
        cells.append(cell(runs) if runs else "")
        if runs:
            mean = statistics.mean(r["dev"] for r in runs)
            best[start] = max(best.get(start, (0, 0)), (mean, lr))
    print(f"{lr:<8.0e}" + "".join(f"{c:>20}" for c in cells))
print("best rate: " + ", ".join(f"{start} {lr:.0e}" for start, (_, lr) in best.items()))
