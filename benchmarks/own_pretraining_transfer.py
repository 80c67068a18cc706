"""Does the course's own pretrained BERT transfer? Fine-tune it on 500 SST-2 labels, against scratch.

All starts have the same architecture and tokenizer; the only difference is the starting
weights: the whole checkpoint, random weights, or random weights under the checkpoint's
embedding layer (what its word vectors alone are worth). Each is fine-tuned with the same recipe
on the same 500 class-balanced labels (3 seeds) and scored on SST-2 dev, then once on SST-2 test
(1,821 labelled sentences no choice of the recipe ever looked at). The checkpoint comes
from ``pretraining.course_checkpoint`` (trained once into the course cache), or from
``--checkpoint DIR``.

    COURSE_DATA_DIR=../shared/data python benchmarks/own_pretraining_transfer.py
"""
import argparse
import statistics
import time

import course_lib
from course_lib import data, finetune, pretraining

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--checkpoint", help="a pretrained BERT directory (default: the course checkpoint)")
parser.add_argument("--labels", type=int, default=500)
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--threads", type=int, default=2, help="CPU threads (1 is faster on a machine shared with other jobs)")
args = parser.parse_args()

course_lib.setup(threads=args.threads)
start = time.perf_counter()
checkpoint = args.checkpoint or pretraining.course_checkpoint("bert")
print(f"checkpoint: {checkpoint} ({pretraining.describe_checkpoint(checkpoint)}), "
      f"ready after {time.perf_counter() - start:.0f} s")
sst2 = data.load("sst2")
results = {start: {"dev": [], "test": []} for start in finetune.STARTS}
for seed in range(args.seeds):
    train = sst2["train"].take(args.labels, seed=seed)
    for start, scores in results.items():
        run = finetune.transfer_scores(checkpoint, train, sst2["dev"], start=start, seed=seed, test=sst2["test"])
        for split, accuracy in run.items():
            scores[split].append(accuracy)
        print(f"seed {seed} {start:10s} dev accuracy {100 * run['dev']:.1f}%, test {100 * run['test']:.1f}%", flush=True)
means = {split: {start: 100 * statistics.mean(scores[split]) for start, scores in results.items()}
         for split in ("dev", "test")}
for start in results:
    print(f"{start:10s} mean dev {means['dev'][start]:.1f}%, test {means['test'][start]:.1f}% over {args.seeds} seeds")
print(f"gain over scratch at {args.labels} labels: {means['dev']['pretrained'] - means['dev']['scratch']:.1f} points "
      f"on dev, {means['test']['pretrained'] - means['test']['scratch']:.1f} on test")
