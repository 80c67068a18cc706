"""Parameter-efficient fine-tuning against full fine-tuning: MiniLM on SST-2 at two label budgets.

Arms (``course_lib.adapters.ARMS``): full fine-tuning, LoRA at ranks 4, 8 and 16 (query and value), IA3,
BitFit and the linear probe, all by the course's fine-tuning recipe. Each arm's learning rate is chosen first,
among ``adapters.RATES`` for its method, on the first label budget's seed-0 draw cut 80/20 (``data.selection_split``):
fine-tuned on the 80%, scored on the 20%. The dev and test sets are never used to choose. Then every arm runs at its
rate at each budget with each seed and is scored on dev and test. Runs are appended to a JSON-lines file as they
finish (rerun to go on; ``--shard 0/2`` and ``--shard 1/2`` split the work between two processes).

    COURSE_DATA_DIR=../shared/data python benchmarks/peft_vs_full.py
    COURSE_DATA_DIR=../shared/data python benchmarks/peft_vs_full.py --report
"""
import argparse
import json
from pathlib import Path

import course_lib
from course_lib import adapters, data, results

RESULTS = Path(__file__).with_name("peft_vs_full.jsonl")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--labels", type=int, nargs="+", default=[500, 5000], help="label budgets; rates chosen at the first")
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--arms", nargs="+", default=list(adapters.ARMS), metavar="ARM",
                    help=f"arms to run (default all): {', '.join(adapters.ARMS)}")
results.add_benchmark_options(parser, RESULTS)
args = parser.parse_args()
unknown = [arm for arm in args.arms if arm not in adapters.ARMS]
if unknown:
    parser.error(f"unknown arm(s) {', '.join(map(repr, unknown))}; choose from {', '.join(adapters.ARMS)}")
if min(args.labels) < 10 or args.seeds < 1:
    parser.error("--labels must be at least 10 and --seeds at least 1")


def key(row):
    return row["phase"], row["arm"], row["lr"], row["seed"], row["budget"]


def run_job(phase, arm, lr, seed, budget) -> dict:
    """One job: ``select`` fine-tunes on 80% of a draw and scores the other 20%; ``score`` scores dev and test."""
    train = sst2["train"].take(budget, seed=seed)
    if phase == "select":
        fit, check = data.selection_split(train, seed)
        row = adapters.run_arm(arm, fit, check, lr, seed)
    else:
        row = adapters.run_arm(arm, train, sst2["dev"], lr, seed, test=sst2["test"])
    return {"phase": phase, "budget": budget, **row}


def describe(row, *job):
    return json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})


course_lib.setup(threads=args.threads)
if not args.report:
    sst2 = data.load("sst2")
    selection = [("select", arm, lr, 0, args.labels[0]) for arm in args.arms
                 for lr in adapters.RATES[adapters.ARMS[arm][0]]]
    results.run_grid(args.results, selection, args.shard, key, run_job, describe)
    done = {key(row) for row in results.read_results(args.results)}
    missing = sorted({job[1] for job in selection if job not in done})
    if missing:  # another shard is still trying their rates
        raise SystemExit(f"rates not chosen yet for {', '.join(missing)}: rerun when the other shards are done")
    rates = adapters.chosen_rates(results.read_results(args.results))
    scoring = [("score", arm, rates[arm], seed, budget) for budget in args.labels for seed in range(args.seeds)
               for arm in args.arms]
    results.run_grid(args.results, scoring, args.shard, key, run_job, describe)

rows = results.read_results(args.results)
rates, table = adapters.chosen_rates(rows), adapters.summary(rows)
print("Learning rate chosen per arm (80/20 split of the first budget's training labels):")
for arm, lr in rates.items():
    tried = {r["lr"]: 100 * r["dev"] for r in rows if r["phase"] == "select" and r["arm"] == arm}
    print(f"  {arm:18s} {lr:.0e}   (" + ", ".join(f"{k:.0e}: {v:.1f}%" for k, v in sorted(tried.items())) + ")")
for budget in sorted({budget for _, budget in table}):
    print(f"\nSST-2, {budget:,} labels: accuracy (%) mean ± sd over seeds; trainable weights; fp32 training state")
    print(f"{'arm':18s}{'lr':>8s}{'dev':>15s}{'test':>15s}{'trainable':>12s}{'share':>9s}{'state MB':>10s}{'s/step':>8s}")
    full = table.get(("full fine-tuning", budget), {}).get("trainable")
    for arm in adapters.ARMS:
        if (arm, budget) not in table:
            continue
        t = table[arm, budget]
        share = f"{100 * t['trainable'] / full:.2f}%" if full else ""
        print(f"{arm:18s}{t['lr']:>8.0e}{t['dev'][0]:>9.1f} ±{t['dev'][1]:3.1f}{t['test'][0]:>9.1f} ±{t['test'][1]:3.1f}"
              f"{t['trainable']:>12,}{share:>9s}{t['state_bytes'] / 1e6:>10.1f}{t['seconds_per_step']:>8.2f}  (n={t['n']})")
budget = args.labels[0]
if ("LoRA r=8", budget) in table and ("full fine-tuning", budget) in table:
    lora, full = table["LoRA r=8", budget], table["full fine-tuning", budget]
    print(f"\nLoRA r=8 vs full fine-tuning at {budget:,} labels: {lora['dev'][0] - full['dev'][0]:+.1f} points (dev) "
          f"with {100 * lora['trainable'] / full['trainable']:.2f}% of the trainable parameters")
