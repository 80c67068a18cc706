"""Distillation on SST-2: MiniLM teaches the course's tiny BERT, against the same student trained on labels alone.

1. The teacher (once): the pretrained MiniLM fine-tuned on ``--teacher-labels`` class-balanced SST-2 training
   sentences; its logits for all 67,349 training sentences and the 872 dev sentences are saved in
   benchmarks/distillation_teacher.safetensors, which notebook 09 reads too.
2. The students: every arm of ``course_lib.distillation.ARMS`` x seed, starting from the course BERT, at
   ``--labels`` gold labels (the same class-balanced draws as benchmarks/label_budget.py), scored on SST-2 dev.
3. Inference speed of teacher and student on the dev sentences (sentences per second, one thread).
Each run is appended to distillation.jsonl as it finishes (interrupt and rerun to go on).

    COURSE_DATA_DIR=../shared/data python benchmarks/distillation.py
    COURSE_DATA_DIR=../shared/data python benchmarks/distillation.py --report
"""
import argparse
import functools
import statistics
from pathlib import Path

import torch

import course_lib
from course_lib import data, distillation as dl, finetune, results
from course_lib.pretraining import course_checkpoint

RESULTS = Path(__file__).with_name("distillation.jsonl")
TEACHER = Path(__file__).with_name("distillation_teacher.safetensors")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--teacher-labels", type=int, default=dl.TEACHER_LABELS)
parser.add_argument("--labels", type=int, default=500)
parser.add_argument("--seeds", type=int, default=3)
results.add_benchmark_options(parser, RESULTS, threads=1)
args = parser.parse_args()


def job_key(row: dict) -> tuple:
    return row["kind"], row.get("arm") or row.get("model"), row.get("seed", 0)


@functools.cache
def teacher_logits() -> torch.Tensor:
    """The saved teacher's training-sentence logits; trains and saves the teacher first if there is none.

    Cached, and read by the student jobs only: a process with no student job left never trains or loads it.
    """
    train, dev = sst2["train"], sst2["dev"]
    if not TEACHER.exists():
        model, tokenizer, accuracy = dl.train_teacher(train.take(args.teacher_labels, seed=0), dev)
        info = {"labels": args.teacher_labels, "epochs": 1, "dev_accuracy": accuracy}
        print(f"teacher: MiniLM fine-tuned on {args.teacher_labels:,} labels, dev {100 * accuracy:.1f}%", flush=True)
        dl.save_teacher(TEACHER, finetune.logits(model, tokenizer, train.texts, 256),
                        finetune.logits(model, tokenizer, dev.texts, 256), train.texts, info)
    return dl.load_teacher(TEACHER, train.texts)[0]


def speed(name: str, sst2) -> dict:
    model, tokenizer = finetune.load_classifier(finetune.MINILM if name == "teacher" else course_checkpoint("bert"))
    return {"kind": "speed", "model": name, "parameters": sum(p.numel() for p in model.parameters()),
            "sentences_per_second": dl.sentences_per_second(model, tokenizer, sst2["dev"].texts)}


def run_job(kind: str, name: str, seed: int) -> dict:
    if kind == "speed":
        return speed(name, sst2)
    return {"kind": kind, **dl.run(name, sst2, teacher_logits(), args.labels, seed)}


def describe(row: dict, kind: str, name: str, seed: int) -> str:
    if kind == "speed":
        return f"{name}: {row['sentences_per_second']:,.0f} sentences/s"
    return (f"{name:<28} seed {seed}: dev {100 * row['dev']:.1f}% ({row['sentences']:,} sentences, "
            f"{row['steps']} steps, {row['seconds']:.0f} s)")


course_lib.setup(threads=args.threads)
if not args.report:
    sst2 = data.load("sst2")
    grid = [("student", arm, seed) for seed in range(args.seeds) for arm in dl.ARMS]
    grid += [("speed", name, 0) for name in ("teacher", "student")]
    results.run_grid(args.results, grid, args.shard, job_key, run_job, describe)

rows = results.read_results(args.results)
_, _, info = dl.load_teacher(TEACHER, data.load("sst2")["train"].texts)
print(f"\nteacher: MiniLM fine-tuned on {info['labels']:,} labels ({info['epochs']} pass): "
      f"SST-2 dev {100 * info['dev_accuracy']:.1f}%")
print(f"students: the course BERT, {args.labels} gold labels; SST-2 dev accuracy (%), mean ± sd over seeds")
means = {}
for arm in dl.ARMS:
    got = [100 * r["dev"] for r in rows if r["kind"] == "student" and r["arm"] == arm]
    if got:
        means[arm] = statistics.mean(got)
        sd = statistics.stdev(got) if len(got) > 1 else 0.0
        print(f"  {arm:<28} {means[arm]:5.1f} ± {sd:.1f}  ({len(got)} seeds)")
fast = {r["model"]: r for r in rows if r["kind"] == "speed"}
if len(fast) == 2:
    t, s = fast["teacher"], fast["student"]
    print(f"inference, one thread, SST-2 dev: teacher {t['sentences_per_second']:,.0f} sentences/s "
          f"({t['parameters'] / 1e6:.1f}M parameters), student {s['sentences_per_second']:,.0f} sentences/s "
          f"({s['parameters'] / 1e6:.1f}M): {s['sentences_per_second'] / t['sentences_per_second']:.1f}x faster")
if {"labels only", "distilled, all sentences"} <= set(means):
    gain = means["distilled, all sentences"] - means["labels only"]
    print(f"distilled student gain over label-only student at {args.labels} labels: {gain:.1f} points")
