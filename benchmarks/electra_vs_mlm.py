"""Replaced-token detection (ELECTRA) against masked LM at equal compute, on the course's tiny BERT.

Four pretraining runs on the SST-2 sentences with the course BERT's tokenizer, blocks, batch, learning rate and
schedule (``pretraining.RECIPES[("bert", "cpu")]``), compared in pairs at equal training FLOPs; ELECTRA's generator
(1 layer) and discriminator (2 layers) are both counted, so it takes fewer steps than masked LM:
- skip-gram vectors + masked LM (the course BERT itself, notebook 06) against skip-gram vectors + ELECTRA (the
  same frozen vectors under a generator and discriminator), at the course BERT's FLOPs;
- masked LM against ELECTRA from random embeddings (nothing frozen), at half of them (to save an hour of CPU).
Then each, the skip-gram vectors alone and random weights are fine-tuned on 500 SST-2 labels
(``label_budget.recipe``; 3 seeds, the same class-balanced draws as benchmarks/label_budget.py), scored on
SST-2 dev. Runs are appended to electra_vs_mlm.jsonl as they finish; the pretrained encoders stay in the cache.

    COURSE_DATA_DIR=../shared/data python benchmarks/electra_vs_mlm.py
    COURSE_DATA_DIR=../shared/data python benchmarks/electra_vs_mlm.py --report
"""
import argparse
import statistics
import time
from pathlib import Path

from transformers import AutoTokenizer

import course_lib
from course_lib import checkpoints, costs, data, electra, label_budget as lb, pretraining, results
from course_lib.runtime import cache_dir

RESULTS = Path(__file__).with_name("electra_vs_mlm.jsonl")
RECIPE = pretraining.RECIPES["bert", "cpu"]
SHARED = {k: RECIPE[k] for k in ("batch_size", "lr", "warmup_steps", "device", "precision")}
# pretraining run -> (objective, skip-gram vectors under it, share of the course BERT's FLOPs); the course BERT first
RUNS = {"skip-gram + masked LM": ("mlm", True, 1.0), "skip-gram + ELECTRA": ("electra", True, 1.0),
        "ELECTRA": ("electra", False, 0.5), "masked LM": ("mlm", False, 0.5)}
# fine-tuning arm -> (pretraining run, start)
ARMS = {"skip-gram vectors only": ("skip-gram + masked LM", "embeddings"), **{run: (run, "pretrained") for run in RUNS},
        "random weights": ("skip-gram + masked LM", "scratch")}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--labels", type=int, default=500)
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS),
                    help="pretraining runs to do (with their fine-tuning arms); quote names with spaces")
results.add_benchmark_options(parser, RESULTS, threads=1)  # a 1.5M-parameter model gains little from more
args = parser.parse_args()


def run_dir(name: str) -> Path:
    if name == "skip-gram + masked LM":
        return pretraining.course_checkpoint("bert")
    return cache_dir() / "benchmarks" / "electra_vs_mlm" / name.replace(" + ", "-").replace(" ", "-")


def electra_steps(budget_flops: float, tokenizer) -> int:
    """Steps of ELECTRA that cost ``budget_flops``: a batch of full blocks with 15% of its tokens masked."""
    tokens = RECIPE["batch_size"] * RECIPE["block_size"]
    predicted = RECIPE["mask_rate"] * RECIPE["batch_size"] * (RECIPE["block_size"] - 2)  # [CLS], [SEP] never masked
    per_step = costs.flops_profile(electra.build(tokenizer, block_size=RECIPE["block_size"])).batch(
        tokens, RECIPE["block_size"], round(predicted))
    return round(budget_flops / per_step)


def pretrain(name: str, budget_flops: float) -> dict:
    """Pretrain one of RUNS into the cache (unless it is there); its row: steps, tokens, FLOPs, seconds.

    Under a lock, so that two processes (``--runs``) never train the same run twice.
    """
    objective, skip_gram, share = RUNS[name]
    course, out = pretraining.course_checkpoint("bert"), run_dir(name)
    with checkpoints.exclusive(out):
        if not checkpoints.is_resumable(out):
            start = time.perf_counter()
            if objective == "electra":
                steps = electra_steps(share * budget_flops, AutoTokenizer.from_pretrained(course))
                electra.pretrain(out, steps, tokenizer_from=course, embeddings_from=course if skip_gram else None,
                                 corpus=RECIPE["corpus"], block_size=RECIPE["block_size"], eval_every=0, **SHARED)
            else:
                recipe = {k: v for k, v in RECIPE.items() if k not in ("preset", "word2vec_epochs", "max_steps")}
                pretraining.pretrain("bert", RECIPE["preset"], out, round(share * RECIPE["max_steps"]), **recipe)
            print(f"{name}: pretrained in {time.perf_counter() - start:.0f} s", flush=True)
    meta = checkpoints.read_meta(out)
    return {"kind": "pretrain", "run": name, "steps": meta["step"], "tokens": meta["cost"]["tokens"],
            "flops": meta["cost"]["flops"], "seconds": meta["cost"]["seconds"],
            "eval_loss": meta["history"]["eval"][-1]["loss"]}


def run_job(kind: str, name: str, seed: int) -> dict:
    if kind == "pretrain":
        return pretrain(name, budget)
    run, start = ARMS[name]
    pretrain(run, budget)  # already there, unless another process was given this arm's run
    arm = lb.Arm(name, str(run_dir(run)), start)
    return {"kind": kind, **lb.run_arm(arm, sst2["train"].take(args.labels, seed), sst2["dev"], seed)}


def describe(row: dict, kind: str, name: str, seed: int):
    """None for a pretraining run: ``pretrain`` says itself when it trains one."""
    return None if kind == "pretrain" else f"{name:<26} seed {seed}: dev {100 * row['dev']:.1f}%"


course_lib.setup(threads=args.threads)
if not args.report:
    sst2 = data.load("sst2")
    budget = checkpoints.read_meta(pretraining.course_checkpoint("bert"))["cost"]["flops"]
    grid = []
    for name in args.runs:
        grid.append(("pretrain", name, 0))
        grid += [("finetune", arm, seed) for seed in range(args.seeds) for arm, (run, _) in ARMS.items() if run == name]
    results.run_grid(args.results, grid, args.shard, run=run_job, describe=describe,
                     key=lambda r: (r["kind"], r.get("run") or r["arm"], r.get("seed", 0)))

rows = results.read_results(args.results)
print("\npretraining runs (equal FLOPs in pairs): steps, tokens, FLOPs, time, final validation loss of their objective")
for r in (r for r in rows if r["kind"] == "pretrain"):
    print(f"  {r['run']:<24} {r['steps']:>6,} steps {r['tokens']:>11,} tokens {r['flops']:.2e} FLOPs "
          f"{r['seconds'] / 60:5.1f} min  loss {r['eval_loss']:.3f}")
print(f"fine-tuned on {args.labels} labels: SST-2 dev accuracy (%), mean ± sd over seeds")
means = {}
for arm in ARMS:
    got = [100 * r["dev"] for r in rows if r["kind"] == "finetune" and r["arm"] == arm]
    if got:
        means[arm] = statistics.mean(got)
        print(f"  {arm:<26} {means[arm]:5.1f} ± {statistics.stdev(got) if len(got) > 1 else 0.0:.1f}  ({len(got)} seeds)")
for run in ("skip-gram + masked LM", "skip-gram + ELECTRA"):
    if run in means and "skip-gram vectors only" in means:
        print(f"{run} over the skip-gram vectors alone: {means[run] - means['skip-gram vectors only']:+.1f} points")
