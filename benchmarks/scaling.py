"""A scaling law on this machine: validation loss of small GPTs against their size and compute.

Trains every (grid, width) of ``course_lib.scaling`` that the results file lacks, appending each run as
it finishes (interrupt and rerun to go on; ``--shard 0/2`` and ``--shard 1/2`` split the runs between two
processes), then prints both grids, the power law fitted to the one-pass grid, what it predicts for the
next size up against what that size reached, and the compute-optimal size at the fixed budget.

    COURSE_DATA_DIR=../shared/data python benchmarks/scaling.py --shard 0/2 --threads 1 &
    COURSE_DATA_DIR=../shared/data python benchmarks/scaling.py --shard 1/2 --threads 1
    COURSE_DATA_DIR=../shared/data python benchmarks/scaling.py --report

One process alone (``--threads 1``, no ``--shard``) runs the whole grid in about an hour. ``--lr`` trains
at another learning rate than the shared ``scaling.LR`` (notebook 10, exercise 5), ``--widths`` only some
sizes; rows at another rate are kept apart from the grid's (the report reads only rows at ``--lr``):

    COURSE_DATA_DIR=../shared/data python benchmarks/scaling.py --grids tokens --widths 256 --lr 1e-3 --threads 1
"""
import argparse
from pathlib import Path

import course_lib
from course_lib import results, scaling

RESULTS = Path(__file__).with_name("scaling.jsonl")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--grids", nargs="+", default=list(scaling.GRIDS), choices=list(scaling.GRIDS))
parser.add_argument("--eval-every", type=int, default=100, help="steps between validation losses (the curves)")
parser.add_argument("--lr", type=float, default=scaling.LR, help="peak learning rate of every run")
parser.add_argument("--widths", type=int, nargs="+", help="only these widths of each grid")
results.add_benchmark_options(parser, RESULTS)
args = parser.parse_args()


def run_job(g: str, width: int) -> dict:
    model = scaling.build(width, tokenizer)
    n_steps = scaling.steps(g, model, train_blocks)
    row, _ = scaling.train(width, n_steps, tokenizer, train_blocks, eval_blocks,
                           eval_every=args.eval_every if g == "tokens" else 0, lr=args.lr)
    return {"grid": g, **row}


def describe(row: dict, g: str, width: int) -> str:
    return (f"{g:<8} width {width:>3}: {row['params_non_embedding']:>9,} parameters, {row['steps']:>5} steps, "
            f"lr {row['lr']:g}, loss {row['loss']:.3f} ({row['seconds']:.0f} s)")


course_lib.setup(threads=args.threads)
if not args.report:
    tokenizer, train_blocks, eval_blocks = scaling.tokenizer_and_blocks()
    grid = [(g, w) for g in args.grids for w in reversed(scaling.GRIDS[g])  # shards alternate sizes
            if not args.widths or w in args.widths]
    results.run_grid(args.results, grid, args.shard, run=run_job, describe=describe,
                     key=lambda r: (r["grid"], r["width"]) if r["lr"] == args.lr else None)

all_rows = results.read_results(args.results)
rows = [r for r in all_rows if r["lr"] == args.lr]
by_grid = {g: sorted((r for r in rows if r["grid"] == g), key=lambda r: r["width"]) for g in scaling.GRIDS}
one_pass_tokens = max((r["tokens"] for r in all_rows if r["grid"] == "tokens"), default=None)
for g, title in [("tokens", "one pass over the same tokens"),
                 ("compute", f"the same compute per run, {scaling.COMPUTE_BUDGET:.1e} FLOPs")]:
    print(f"\n{title}, lr {args.lr:g}")
    print(f"{'width':>6}{'N (non-embedding)':>19}{'parameters':>12}{'tokens':>11}{'passes':>8}{'FLOPs':>10}{'loss':>8}")
    for r in by_grid[g]:
        passes = f"{r['tokens'] / one_pass_tokens:8.1f}" if one_pass_tokens else f"{'':8}"
        print(f"{r['width']:>6}{r['params_non_embedding']:>19,}{r['params']:>12,}{r['tokens']:>11,}{passes}"
              f"{r['flops']:>10.2e}{r['loss']:>8.3f}")

# The fit is the grid's: the fitted widths at the shared learning rate.
fitted = sorted((r for r in all_rows if r["grid"] == "tokens" and r["width"] in scaling.WIDTHS and r["lr"] == scaling.LR),
                key=lambda r: r["width"])
if len(fitted) < len(scaling.WIDTHS):
    raise SystemExit(f"error: the results hold {len(fitted)} of the {len(scaling.WIDTHS)} fitted sizes at lr "
                     f"{scaling.LR:g}; run them first")
law = scaling.fit_power_law([r["params_non_embedding"] for r in fitted], [r["loss"] for r in fitted])
if args.lr != scaling.LR:
    for r in by_grid["tokens"]:
        n = r["params_non_embedding"]
        print(f"width {r['width']} at lr {args.lr:g}: reached {r['loss']:.3f}; the lr {scaling.LR:g} grid's fit "
              f"predicts {law(n):.3f} ({100 * (r['loss'] - law(n)) / law(n):+.1f}%)")
    raise SystemExit(0)
compute = by_grid["compute"]
if len(compute) >= 3:
    lowest = min(compute, key=lambda r: r["loss"])
    best = scaling.best_size([r["params"] for r in compute], [r["loss"] for r in compute])
    print(f"\nfixed compute: lowest loss at width {lowest['width']}, {lowest['tokens'] / lowest['params']:.1f} "
          f"tokens per parameter (embeddings included; Hoffmann et al. 2022: about "
          f"{scaling.CHINCHILLA_TOKENS_PER_PARAMETER}), {lowest['tokens'] / lowest['params_non_embedding']:.0f} per "
          f"non-embedding parameter; embeddings are {1 - lowest['params_non_embedding'] / lowest['params']:.0%} of its "
          f"parameters")
    if best is None:
        print("fixed compute: the loss has no minimum inside the sizes tried")
    else:
        print(f"parabola through the lowest points: best size ≈ {best:,.0f} parameters, "
              f"≈ {scaling.COMPUTE_BUDGET / (6 * best * best):.0f} tokens per parameter at C = 6·N·D")
frontier = scaling.frontier(by_grid["tokens"])
compute_law = scaling.fit_power_law(*zip(*frontier))
print(f"loss against compute along the frontier: loss ∝ C^-{compute_law.exponent:.3f}, R² = {compute_law.r2:.2f} "
      f"(Kaplan et al. 2020: {scaling.KAPLAN_ALPHA_C})")
following = [r for r in by_grid["tokens"] if r["width"] == scaling.NEXT_WIDTH]
if following:
    n, reached = following[0]["params_non_embedding"], following[0]["loss"]
    print(f"next size up, width {scaling.NEXT_WIDTH} (N = {n:,}): predicted {law(n):.3f}, reached {reached:.3f} "
          f"({100 * (reached - law(n)) / law(n):+.1f}%)")
print(f"Kaplan et al. 2020: α_N = {scaling.KAPLAN_ALPHA_N}; here over {len(fitted)} sizes, "
      f"{fitted[0]['params_non_embedding']:,} to {fitted[-1]['params_non_embedding']:,} parameters")
print(f"power-law fit: {law}")
