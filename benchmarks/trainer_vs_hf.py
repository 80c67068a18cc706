"""course_lib's trainer vs ``transformers.Trainer``: same model, data, steps and settings.

For each architecture the script builds the course's small GPT or BERT exactly as its pretraining
does (``course_lib.pretraining.build_model``: ``models.build``, and for BERT the masked-only output
layer), packs the pretraining corpus into blocks (``pretraining.pack``) and trains an identical copy
of the model with each trainer:

    same initial weights, same blocks, same collator (causal LM / masked LM), same batch size,
    AdamW with the same peak lr, weight decay (none on biases and norms) and linear decay to 0,
    clipping at 1.0, fp32 on CPU / bf16 autocast on a GPU, no evaluation, no checkpoints, no logging.

Each trainer keeps its own defaults where a user would (e.g. ``transformers.Trainer``'s fused AdamW
and its DataLoader; both progress bars are on, as a learner sees them). Timing: a callback stamps the
clock after every optimizer step; the first ``--warmup`` steps are excluded, the next ``--steps`` are
timed, so per-step overheads (batching, collation, bookkeeping, progress bar) count for both sides.
Tokens are counted the same way for both: batch size x block length per step (packed blocks have no
padding). On CPU, throughput is tokens per step / the median step time, which other jobs' bursts on a
shared machine barely move (the total-time figure is printed too); on a GPU it is the total time of
the window, synchronised at its ends only. Rounds alternate which trainer goes first; each trainer's
best round is reported.

    python benchmarks/trainer_vs_hf.py                            # CPU: tiny GPT and BERT, 30 steps
    python benchmarks/trainer_vs_hf.py --threads 1 --clock process  # CPU shared with other jobs
    python benchmarks/trainer_vs_hf.py --device cuda --preset small --batch-size 64 --steps 100
    python benchmarks/trainer_vs_hf.py --device cuda --preset small --batch-size 64 --steps 100 --hf-workers 4

The last line is ``speedup vs transformers.Trainer: X.XX`` (course tokens/s / Trainer tokens/s, over
all architectures). On a GPU the MFU of each side is printed too (``course_lib.costs``).
"""
import argparse
import copy
import os
import platform
import statistics
import tempfile
import time

import torch
import transformers
from transformers import TrainerCallback, TrainingArguments

from course_lib import hardware, models, pretraining, runtime
from course_lib.costs import flops_profile
from course_lib.tokenization import train_tokenizer
from course_lib.trainer import Trainer, TrainConfig


def stamp(device: torch.device, step: int, args) -> float:
    """The clock after optimizer step ``step`` (1-based). A GPU runs behind the Python loop, so it is
    synchronised at the two steps that bound the timed window only: neither trainer is slowed down."""
    if device.type == "cuda" and step in (args.warmup, args.warmup + args.steps):
        torch.cuda.synchronize()
    return time.process_time() if args.clock == "process" else time.perf_counter()


# --- the course trainer, with a clock stamp after each optimizer step ------------------------------
class StampedTrainer(Trainer):
    def __init__(self, *args, bench_args=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.bench_args, self.stamps = bench_args, []

    def train_step(self, batches):
        result = super().train_step(batches)
        self.stamps.append(stamp(self.device, self.step + 1, self.bench_args))
        return result


def run_course(model, blocks, collate, args, device, precision) -> tuple:
    cfg = TrainConfig(max_steps=args.warmup + args.steps, batch_size=args.batch_size, lr=args.lr,
                      weight_decay=0.01, warmup_steps=0, schedule="linear", max_grad_norm=1.0,
                      precision=precision, device=str(device), seed=0, progress=args.progress,
                      log_every=args.warmup + args.steps)  # losses read back once, at the end (Trainer logs nothing)
    trainer = StampedTrainer(model, blocks, collate, cfg, bench_args=args)
    trainer.fit()
    losses = [h["loss"] for h in trainer.history["train"]]
    return trainer.stamps, sum(losses) / len(losses)


# --- transformers.Trainer, with the same stamp from a callback ---------------------------------
class Stamps(TrainerCallback):
    def __init__(self, device, bench_args):
        self.device, self.bench_args, self.stamps = device, bench_args, []

    def on_step_end(self, args, state, control, **kwargs):
        self.stamps.append(stamp(self.device, state.global_step, self.bench_args))


def run_hf(model, blocks, collate, args, device, precision) -> tuple:
    stamps = Stamps(device, args)
    with tempfile.TemporaryDirectory() as out_dir:
        training_args = TrainingArguments(
            output_dir=out_dir, max_steps=args.warmup + args.steps, per_device_train_batch_size=args.batch_size,
            learning_rate=args.lr, weight_decay=0.01, warmup_steps=0, lr_scheduler_type="linear",
            max_grad_norm=1.0, bf16=precision == "bf16", use_cpu=device.type == "cpu", seed=0,
            eval_strategy="no", save_strategy="no", logging_strategy="no", report_to="none",
            disable_tqdm=not args.progress, dataloader_num_workers=args.hf_workers)
        trainer = transformers.Trainer(model=model, args=training_args, data_collator=collate,
                                       train_dataset=blocks, callbacks=[stamps])
        result = trainer.train()
    return stamps.stamps, result.training_loss


RUNNERS = {"course_lib": run_course, "transformers.Trainer": run_hf}


def benchmark_arch(arch: str, texts: list, args, device, precision) -> dict:
    tokenizer = train_tokenizer(arch, texts, args.vocab_size)
    blocks = pretraining.pack(tokenizer, texts, args.block_size)
    needed = (args.warmup + args.steps) * args.batch_size
    if len(blocks) < needed:
        raise SystemExit(f"{arch}: only {len(blocks)} blocks for {needed} examples; use fewer steps or a bigger corpus")
    blocks = blocks[:needed]  # one epoch for both trainers, whatever order each samples it in
    collate, _, _ = pretraining.objective(arch, tokenizer, 0.15)  # causal LM, or masked LM 80/10/10
    runtime.seed_everything(0)
    initial = pretraining.build_model(arch, args.preset, tokenizer, args.block_size)
    step_tokens = args.batch_size * args.block_size  # packed blocks: no padding, identical for both
    tokens = args.steps * step_tokens
    # the masked LM runs its output layer only at the ~15% masked positions
    predicted = round(0.15 * step_tokens) if arch == "bert" else step_tokens
    flops_per_token = flops_profile(initial).batch(step_tokens, args.block_size, predicted, args.batch_size) / step_tokens
    print(f"\n{arch} '{args.preset}' ({models.count_parameters(initial) / 1e6:.2f}M parameters), batch "
          f"{args.batch_size} x {args.block_size} tokens, {args.steps} timed steps after {args.warmup} warm-up, "
          f"{precision} on {device}")
    results = {name: [] for name in RUNNERS}
    for round_ in range(args.repeats):
        order = list(RUNNERS) if round_ % 2 == 0 else list(RUNNERS)[::-1]
        for name in order:
            stamps, loss = RUNNERS[name](copy.deepcopy(initial), blocks, collate, args, device, precision)
            assert len(stamps) == args.warmup + args.steps, (name, len(stamps))
            step_seconds = [b - a for a, b in zip(stamps[args.warmup - 1:], stamps[args.warmup:])]
            median = statistics.median(step_seconds)
            # on a GPU only the window's ends are synchronised, so only the total time is exact there
            results[name].append(step_tokens / median if device.type == "cpu" else tokens / sum(step_seconds))
            print(f"  round {round_ + 1}  {name:21s} {step_tokens / median:8,.0f} tokens/s (median step)  "
                  f"{tokens / sum(step_seconds):8,.0f} tokens/s (total time)   mean train loss {loss:.3f}")
    best = {name: max(runs) for name, runs in results.items()}
    peak = hardware.peak_flops(device, precision)  # a CPU's: its measured fp32 matmul rate on these threads
    for name, tps in best.items():
        mfu = f"   MFU {100 * tps * flops_per_token / peak:.1f}%" if peak else ""
        print(f"  best     {name:21s} {tps:8,.0f} tokens/s{mfu}")
    print(f"  {arch} speedup: {best['course_lib'] / best['transformers.Trainer']:.2f}")
    return {"tokens": tokens, **{name: tokens / tps for name, tps in best.items()}}  # seconds of each


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", nargs="+", default=["gpt", "bert"], choices=models.ARCHS)
    parser.add_argument("--preset", default="tiny", choices=sorted(models.PRESETS))
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed ones (>= 1)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--repeats", type=int, default=3, help="rounds per trainer (order alternates)")
    parser.add_argument("--corpus", default="sst2", help="course_lib.pretraining corpus, e.g. sst2+wiki")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--clock", default="wall", choices=["wall", "process"],
                        help="process: CPU seconds of this process instead of wall time; with --threads 1 it "
                             "measures the trainers' work on a machine busy with other jobs")
    parser.add_argument("--hf-workers", type=int, default=0,
                        help="transformers.Trainer's DataLoader worker processes (its default 0 collates on the main "
                             "thread, as the course trainer does; more shows what prefetching buys)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide both progress bars")
    args = parser.parse_args(argv)
    if args.warmup < 1:
        parser.error("--warmup must be at least 1: the first stamp starts the clock")

    runtime.quiet_libraries()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = hardware.pick_device(args.device)
    precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    if args.clock == "process" and device.type != "cpu":
        parser.error("--clock process only makes sense on CPU")
    print(f"clock: {args.clock}{' (tokens per CPU-second of this process)' if args.clock == 'process' else ''}")
    print(f"machine: {machine}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"transformers {transformers.__version__}; load average {os.getloadavg()[0]:.2f}")
    texts = pretraining.load_corpus(args.corpus)
    totals = {"tokens": 0, "course_lib": 0.0, "transformers.Trainer": 0.0}
    for arch in args.arch:
        for key, value in benchmark_arch(arch, texts, args, device, precision).items():
            totals[key] += value
    course, hf = totals["tokens"] / totals["course_lib"], totals["tokens"] / totals["transformers.Trainer"]
    print(f"\nall architectures: course_lib {course:,.0f} tokens/s, transformers.Trainer {hf:,.0f} tokens/s; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"speedup vs transformers.Trainer: {course / hf:.2f}")


if __name__ == "__main__":
    main()
