"""How much of each pretraining corpus's held-out text the model has already trained on: word 8-gram overlap.

For every corpus a held-out loss is reported on, the share of the held-out text's word 8-grams that occur
somewhere in the training text, two ways:
- ``interleaved``: every 20th text held out as the corpus comes, which is what holding out every 20th
  packed block amounts to (the course's split before the held-out text was held out);
- ``by source``: ``pretraining.split_corpus``, repeated texts counted once and, for SST-2, whole sentences
  held out with every phrase cut from them.
For comparison, SST-2 dev (872 sentences never trained on) against the SST-2 training phrases.
Last line: ``held-out 8-gram overlap with training text: X%`` (the largest, by source).

    COURSE_DATA_DIR=../shared/data python benchmarks/heldout_overlap.py
"""
from course_lib import data, pretraining

N = 8


def grams(texts: list) -> list:
    return [tuple(words[i:i + N]) for words in (t.split() for t in texts) for i in range(len(words) - N + 1)]


def overlap(train: list, held_out: list) -> float:
    seen, held = set(grams(train)), grams(held_out)
    return 100 * sum(g in seen for g in held) / len(held)


every = pretraining.HELD_OUT_EVERY
print(f"{'corpus':<8}{'texts':>8}{'distinct':>10}{'held out':>10}{'interleaved':>13}{'by source':>11}")
worst = 0.0
for name, corpus in pretraining.CORPORA.items():
    texts = corpus.load()
    interleaved = overlap([t for i, t in enumerate(texts) if i % every], texts[::every])
    train, held_out = pretraining.split_corpus(corpus)
    clean = overlap(train, held_out)
    worst = max(worst, clean)
    print(f"{name:<8}{len(texts):>8,}{len(set(texts)):>10,}{len(held_out):>10,}{interleaved:>12.1f}%{clean:>10.1f}%")
sst2 = data.load("sst2")
print(f"SST-2 dev sentences against the SST-2 training phrases: {overlap(sst2['train'].texts, sst2['dev'].texts):.1f}%")
print(f"held-out 8-gram overlap with training text: {worst:.1f}%")
