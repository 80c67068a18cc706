"""Skip-Gram (course, PyTorch) vs gensim Word2Vec: same corpus, same settings, measured in one run.

    COURSE_DATA_DIR=../shared/data python benchmarks/skipgram_vs_gensim.py [--epochs 3] [--gensim-epochs 15]

Prints words/s (raw corpus words x epochs / wall seconds of training), analogy accuracy on the
answerable questions of questions-words.txt, and Spearman rho on WordSim-353 and SimLex-999.
gensim runs with 1 worker (reproducible) and with 2 (this machine's cores), for as many epochs as notebook 01
gives it: at 3 its plain SGD has not spread the vectors out yet, and a reference that has not finished learning
checks nothing.
"""
import argparse
import time

from gensim.models import Word2Vec

import course_lib
from course_lib import embedding_eval, word2vec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="the course Skip-Gram's epochs")
    parser.add_argument("--gensim-epochs", type=int, default=15, help="gensim's epochs (notebook 01: 15)")
    args = parser.parse_args()
    course_lib.setup()
    sentences = word2vec.english_corpus()
    n_words = sum(len(s) for s in sentences)
    cfg = word2vec.SkipGramConfig(epochs=args.epochs)
    print(f"corpus: {n_words:,} words; dim {cfg.dim}, window {cfg.window}, negatives {cfg.negatives}, "
          f"min_count {cfg.min_count}, sample {cfg.sample}, epochs {cfg.epochs} (gensim {args.gensim_epochs})")

    rows = []
    run = word2vec.train(sentences, cfg, progress=False)
    rows.append(("course Skip-Gram (PyTorch, 2 threads)", run.words_per_second,
                 embedding_eval.keyed_vectors(run.vocab.words, run.vectors())))
    for workers in (1, 2):
        start = time.perf_counter()
        model = Word2Vec(sentences, vector_size=cfg.dim, window=cfg.window, negative=cfg.negatives, sg=1,
                         min_count=cfg.min_count, sample=cfg.sample, epochs=args.gensim_epochs, workers=workers, seed=0)
        rows.append((f"gensim Word2Vec ({workers} worker{'s' * (workers > 1)})",
                     n_words * args.gensim_epochs / (time.perf_counter() - start), model.wv))

    print("| implementation | words/s | analogy acc. (coverage) | WordSim-353 rho | SimLex-999 rho |")
    print("|---|---:|---:|---:|---:|")
    for name, speed, kv in rows:
        s = embedding_eval.all_scores(kv)
        print(f"| {name} | {speed:,.0f} | {s['analogy_acc']:.1%} ({s['analogy_coverage']:.0%}) | "
              f"{s['wordsim353_rho']:.3f} | {s['simlex999_rho']:.3f} |")


if __name__ == "__main__":
    main()
