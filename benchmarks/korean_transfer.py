"""Korean transfer: dev macro-F1 on hate / offensive / none against the number of labels, pretrained against scratch.

Runs every (arm, budget, seed) of ``course_lib.korean`` that the results file lacks, appending each as it finishes
(interrupt and rerun to go on; ``--shard 0/2`` and ``--shard 1/2`` split the grid between two processes), then
prints macro-F1 and accuracy per arm and budget and, as its last line, the gain of the course's Korean BERT over
the same model from random weights at 1,000 labels (mean of the seeds). The Korean BERT comes from the course cache,
trained there first if it is missing (``pretraining.course_checkpoint("korean-bert")``, a few minutes).

    COURSE_DATA_DIR=../shared/data python benchmarks/korean_transfer.py --threads 1
    COURSE_DATA_DIR=../shared/data python benchmarks/korean_transfer.py --report
"""
import argparse
from pathlib import Path

import course_lib
from course_lib import data, korean, label_budget as lb, pretraining, results

RESULTS = Path(__file__).with_name("korean_transfer.jsonl")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--budgets", type=int, nargs="+", default=list(korean.BUDGETS))
parser.add_argument("--arms", nargs="+", default=[*korean.STARTS, korean.TFIDF], help="arm names (quote them)")
parser.add_argument("--seeds", type=int, default=3)
results.add_benchmark_options(parser, RESULTS)
args = parser.parse_args()


def describe(row: dict, arm: str, n: int, seed: int) -> str:
    return (f"{arm:<38} {n:>6,} labels seed {seed}: macro-F1 {100 * row['macro_f1']:.1f}% "
            f"({row['seconds']:.0f} s)")


course_lib.setup(threads=args.threads)
if not args.report:
    checkpoint = pretraining.course_checkpoint(korean.CHECKPOINT)
    print(f"checkpoint: {checkpoint.name} ({pretraining.describe_checkpoint(checkpoint)})", flush=True)
    task = data.load_korean_hate_speech()
    grid = [(arm, n, seed) for arm in args.arms for n in args.budgets for seed in range(args.seeds)]  # TF-IDF last
    results.run_grid(args.results, grid, args.shard, key=lambda r: (r["arm"], r["labels"], r["seed"]),
                     run=lambda arm, n, seed: korean.run(arm, task, n, seed), describe=describe)

rows = results.read_results(args.results)
for metric, name in (("macro_f1", "macro-F1"), ("accuracy", "accuracy")):
    print(f"\nKorean hate speech, dev {name} (%), mean ± standard deviation over seeds")
    print(lb.table(lb.summarise(rows, metric)))
print(f"\nmacro-F1 gain over scratch at 1,000 labels: {korean.gain(lb.summarise(rows, 'macro_f1'), 1000):.1f} points")
