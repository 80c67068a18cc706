"""Which vector should the course BERT's classifier read: the mean of its tokens, or [CLS]?

Notebook 06's exercise 6. The course checkpoint and random weights, each fine-tuned on 500 SST-2 labels
(3 seeds) with mean pooling and with [CLS] pooling, by the course's one fine-tuning recipe; SST-2 dev.

    COURSE_DATA_DIR=../shared/data python benchmarks/bert_pooling.py
"""
import argparse
import statistics

import course_lib
from course_lib import data, finetune, pretraining

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--labels", type=int, default=500)
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--threads", type=int, default=2, help="CPU threads (1 is faster on a machine shared with other jobs)")
args = parser.parse_args()

course_lib.setup(threads=args.threads)
checkpoint = pretraining.course_checkpoint("bert")
sst2 = data.load("sst2")
means = {}
for start in ("pretrained", "scratch"):
    for pooling in ("mean", "cls"):
        accuracies = []
        for seed in range(args.seeds):
            train = sst2["train"].take(args.labels, seed=seed)
            accuracies.append(100 * finetune.transfer_accuracy(checkpoint, train, sst2["dev"], start=start, seed=seed,
                                                               pooling=pooling))
        means[start, pooling] = statistics.mean(accuracies)
        print(f"{start:10s} {pooling:4s} pooling: dev " + " / ".join(f"{a:.1f}" for a in accuracies)
              + f" (mean {means[start, pooling]:.1f}%)", flush=True)
print(f"mean minus [CLS] pooling: pretrained {means['pretrained', 'mean'] - means['pretrained', 'cls']:+.1f} points, "
      f"scratch {means['scratch', 'mean'] - means['scratch', 'cls']:+.1f}")
