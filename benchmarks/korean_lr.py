"""The Korean BERT's fine-tuning learning rate, chosen without touching the dev set.

Every start (pretrained, embeddings only, random weights) at every rate of ``korean.RATES``, fine-tuned by
``finetune.recipe`` on 80% of 1,000 class-balanced training comments and scored by macro-F1 on the other 20%
(``korean.select_learning_rate``). The dev set, which notebook 11 and benchmarks/korean_transfer.py report,
plays no part. Last line: the best rate per start.

    COURSE_DATA_DIR=../shared/data python benchmarks/korean_lr.py --threads 1
"""
import argparse

import course_lib
from course_lib import data, korean

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--labels", type=int, default=1000)
parser.add_argument("--threads", type=int, default=1)
args = parser.parse_args()

course_lib.setup(threads=args.threads)
rows = korean.select_learning_rate(data.load_korean_hate_speech(), args.labels)
print(f"{'start':<12}" + "".join(f"{lr:>10.0e}" for lr in korean.RATES))
best = {}
for start in ("pretrained", "embeddings", "scratch"):
    by_lr = {r["lr"]: 100 * r["macro_f1"] for r in rows if r["start"] == start}
    best[start] = max(by_lr, key=by_lr.get)
    print(f"{start:<12}" + "".join(f"{by_lr[lr]:>10.1f}" for lr in korean.RATES))
print("best rate on the held-back 20% of the training labels: "
      + ", ".join(f"{start} {lr:.0e}" for start, lr in best.items()))
