"""Label-budget curves: SST-2 dev accuracy against the number of labels, pretrained against scratch.

Runs every (arm, budget, seed) of ``course_lib.label_budget`` that the results file lacks, appending
each as it finishes (interrupt and rerun to go on; ``--shard 0/2`` and ``--shard 1/2`` split the grid
between two processes), then prints the table, the test-set accuracy at the largest budget, and how
many labels pretraining saves.

    COURSE_DATA_DIR=../shared/data python benchmarks/label_budget.py --shard 0/2 --threads 1 &
    COURSE_DATA_DIR=../shared/data python benchmarks/label_budget.py --shard 1/2 --threads 1
    COURSE_DATA_DIR=../shared/data python benchmarks/label_budget.py --report
"""
import argparse
from pathlib import Path

import course_lib
from course_lib import data, label_budget as lb, results

RESULTS = Path(__file__).with_name("label_budget.jsonl")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--budgets", type=int, nargs="+", default=list(lb.BUDGETS))
parser.add_argument("--arms", nargs="+", default=[*lb.ARMS, lb.TFIDF], help="arm names (quote them)")
parser.add_argument("--seeds", type=int, default=3)
results.add_benchmark_options(parser, RESULTS)
args = parser.parse_args()


def describe(row: dict, arm: str, n: int, seed: int) -> str:
    return f"{arm:<30} {n:>6} labels seed {seed}: dev {100 * row['dev']:.1f}% ({row['seconds']:.0f} s)"


course_lib.setup(threads=args.threads)
largest = max(args.budgets)
if not args.report:
    sst2 = data.load("sst2")
    grid = [(arm, n, seed) for seed in range(args.seeds) for arm in args.arms for n in args.budgets]
    results.run_grid(args.results, grid, args.shard, key=lambda r: (r["arm"], r["labels"], r["seed"]),
                     run=lambda arm, n, seed: lb.run(arm, sst2, n, seed, with_test=n == largest), describe=describe)

rows = results.read_results(args.results)
summary = lb.summarise(rows)
print("\nSST-2 dev accuracy (%), mean ± standard deviation over seeds")
print(lb.table(summary))
print(f"\nSST-2 test accuracy (%) at {largest:,} labels")
for arm, by_n in lb.summarise(rows, "test").items():
    mean, spread, seeds = by_n[largest]
    print(f"{arm:<30} {mean:5.1f} ±{spread:4.1f} ({seeds} seeds)")
pretrained, scratch = "MiniLM, pretrained", "MiniLM, random weights"
if largest not in summary.get(scratch, {}) or pretrained not in summary:
    raise SystemExit(f"error: the results lack {pretrained!r} or {scratch!r} at {largest:,} labels; run them first")
print()
best_scratch = max(100 * r["dev"] for r in rows if (r["arm"], r["labels"]) == (scratch, largest))
controls = {f"TF-IDF at {largest:,} labels (mean)": summary[lb.TFIDF][largest][0],
            f"the best of the {scratch!r} seeds at {largest:,} labels": best_scratch}
for control, target in controls.items():
    budget = lb.smallest_budget(summary[pretrained], target)
    reached = f"with {budget:,} labels: {largest / budget:.1f}x" if budget else "not within the budgets run"
    print(f"pretrained MiniLM matches {control}, {target:.1f}%, {reached}")
ratio, budget = lb.labels_saved(summary, pretrained, scratch, largest)
if ratio is None:
    print(f"labels saved by pretraining: none (pretrained MiniLM never matches scratch at {largest:,} labels)")
else:
    print(f"labels saved by pretraining: {ratio:.1f}x (pretrained MiniLM matches scratch at {largest:,} labels "
          f"with {budget:,} labels)")
