"""GPT fine-tuning and prompting on SST-2: the course GPT under GPT-1's recipe against random weights, and k-shot prompts.

Two grids, one results file (``kind`` tells the rows apart), each run appended as it finishes
(interrupt and rerun to go on; ``--shard 0/2`` and ``--shard 1/2`` split the work between two processes):
- ``finetune``: every arm of ``course_lib.gpt_finetune.ARMS`` x label budget x seed, on the same
  class-balanced draws as benchmarks/label_budget.py, scored on the 872 SST-2 dev sentences;
- ``prompt``: k demonstrations (k in 0, 1, 4, 8) x seed x template, no training, the same dev sentences.
Then it prints both tables.

    COURSE_DATA_DIR=../shared/data python benchmarks/gpt_finetuning.py --shard 0/2 &
    COURSE_DATA_DIR=../shared/data python benchmarks/gpt_finetuning.py --shard 1/2
    COURSE_DATA_DIR=../shared/data python benchmarks/gpt_finetuning.py --report
"""
import argparse
import functools
import statistics
from pathlib import Path

import course_lib
from course_lib import data, gpt_finetune as gf, label_budget as lb, prompting, results

RESULTS = Path(__file__).with_name("gpt_finetuning.jsonl")
# name -> (template, label words): LM-BFF's SST-2 prompt (Gao et al. 2021), and GPT-1's own zero-shot
# heuristic (Radford et al. 2018, section 5: append "very", compare "positive" with "negative").
TEMPLATES = {"it was terrible/great": (prompting.TEMPLATE, prompting.LABEL_WORDS),
             "very negative/positive": ("{text} very", (" negative", " positive"))}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--budgets", type=int, nargs="+", default=list(gf.BUDGETS), help="e.g. 100 500 2000 5000")
parser.add_argument("--arms", nargs="+", default=list(gf.ARMS), help="arm names (quote them)")
parser.add_argument("--shots", type=int, nargs="+", default=list(prompting.SHOTS))
parser.add_argument("--seeds", type=int, default=3)
results.add_benchmark_options(parser, RESULTS, threads=1)  # a 1M-parameter model gains little from more
args = parser.parse_args()


def job_key(row: dict) -> tuple:
    return (row["kind"], row.get("arm") or row.get("template"), row.get("labels", row.get("k")), row["seed"])


@functools.cache
def prompt_model() -> tuple:
    """The course GPT for prompting, loaded by the first prompt job: a process with none left never loads it."""
    return prompting.prompt_model("course")


def run_job(kind: str, name: str, n: int, seed: int) -> dict:
    """One job of either grid; ``kind`` (and a prompt's ``template``) in its row are what ``job_key`` finds it by."""
    if kind == "prompt":
        model, tokenizer, separator = prompt_model()
        template, words = TEMPLATES[name]
        return {"kind": kind, "template": name, **prompting.k_shot(model, tokenizer, sst2["train"], sst2["dev"], n, seed,
                                                            separator, template, words)}
    return {"kind": kind, **gf.run(name, sst2, n, seed)}


def describe(row: dict, kind: str, name: str, n: int, seed: int) -> str:
    if kind == "prompt":
        return (f"{name:<24} k={n} seed {seed}: {100 * row['accuracy']:.1f}% (calibrated "
                f"{100 * row['calibrated']:.1f}%), {row['demos_used']:.1f} demonstrations fitted")
    return (f"{name:<40} {n:>6} labels seed {seed}: dev {100 * row['dev']:.1f}%, LM loss "
            f"{row['dev_lm_loss']:.2f} ({row['seconds']:.0f} s)")


course_lib.setup(threads=args.threads)
if not args.report:
    sst2 = data.load("sst2")
    grid = [("prompt", t, k, seed) for t in TEMPLATES for k in args.shots for seed in range(args.seeds if k else 1)]
    grid += [("finetune", arm, n, seed) for seed in range(args.seeds) for n in args.budgets for arm in args.arms]
    results.run_grid(args.results, grid, args.shard, job_key, run_job, describe)

rows = results.read_results(args.results)
finetuned = [r for r in rows if r["kind"] == "finetune"]
print("\nSST-2 dev accuracy (%), fine-tuned, mean ± standard deviation over seeds")
print(lb.table(lb.summarise(finetuned)))
print("\nheld-out LM loss (nats per token of the dev sentences) after fine-tuning, mean over seeds")
for arm in gf.ARMS:
    by_n = {r["labels"]: [] for r in finetuned if r["arm"] == arm}
    for r in finetuned:
        if r["arm"] == arm:
            by_n[r["labels"]].append(r["dev_lm_loss"])
    print(f"{arm:<40}" + "".join(f"{n:>8,}: {statistics.mean(v):.2f}" for n, v in sorted(by_n.items())))
print("\nSST-2 dev accuracy (%), prompted (no training): raw / calibrated, mean over seeds; demonstrations fitted")
for name in TEMPLATES:
    for k in args.shots:
        got = [r for r in rows if r["kind"] == "prompt" and r["template"] == name and r["k"] == k]
        if got:
            mean = lambda key: statistics.mean(r[key] for r in got)
            print(f"{name:<24} k={k}: {100 * mean('accuracy'):5.1f} / {100 * mean('calibrated'):5.1f}  "
                  f"(min {100 * min(r['accuracy'] for r in got):.1f}, max {100 * max(r['accuracy'] for r in got):.1f}; "
                  f"predicted positive {100 * mean('positive_share'):.0f}%; {mean('demos_used'):.1f} of {k} fitted)")
