"""SmolLM2-135M-Instruct prompted zero-shot on SST-2: prompt variants chosen on training sentences, the choice scored on dev.

Each variant is a chat prompt (``course_lib.instruct.ChatPrompt``) whose next-token scores of two label words
decide; raw and calibrated (``prompting.calibrate``) count as two options. All are scored on a class-balanced
draw of whole SST-2 *training* sentences; the best option there, and only that one, is then scored on the 872
dev sentences. Each run is appended to the results file as it finishes (interrupt and rerun to go on).

    COURSE_DATA_DIR=../shared/data python benchmarks/instruct_prompting.py --threads 1
    COURSE_DATA_DIR=../shared/data python benchmarks/instruct_prompting.py --report
"""
import argparse
import functools
import time
from pathlib import Path

import course_lib
from course_lib import data, instruct, results
from course_lib.instruct import ChatPrompt

RESULTS = Path(__file__).with_name("instruct_prompting.jsonl")
TASK = "You classify the sentiment of movie reviews as positive or negative."
VARIANTS = {
    "first try: answer 'The sentiment is'": ChatPrompt(answer="The sentiment is"),
    "answer 'The sentiment of this movie review is'": ChatPrompt(),  # how its greedy replies begin
    "no answer prefix, 'Negative'/'Positive'": ChatPrompt(answer="", words=("Negative", "Positive")),
    "no answer prefix, 'negative'/'positive'": ChatPrompt(answer="", words=("negative", "positive")),
    "task as system prompt, answer 'The sentiment is'": ChatPrompt(system=TASK, user="Review: {text}",
                                                                   answer="The sentiment is"),
    "task as system prompt, no answer prefix, 'Negative'/'Positive'": ChatPrompt(
        system=TASK, user="Review: {text}", answer="", words=("Negative", "Positive")),
    "review before the question, answer 'The sentiment of this movie review is'": ChatPrompt(
        user="Review: {text}\n\nIs the sentiment of this movie review positive or negative?"),
    "answer 'The review is'": ChatPrompt(answer="The review is"),  # its replies' words with the task as system prompt
}
WIDTH = max(map(len, VARIANTS))

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--train-sentences", type=int, default=200, help="size of the training draw the prompt is chosen on")
parser.add_argument("--seed", type=int, default=0, help="seed of that draw")
parser.add_argument("--batch-size", type=int, default=32)
results.add_benchmark_options(parser, RESULTS, threads=1)
args = parser.parse_args()


@functools.cache
def model() -> tuple:
    """(model, tokenizer, seconds to load), loaded by the first job: a rerun with nothing left never loads it."""
    start = time.perf_counter()
    loaded = instruct.load_smollm2()
    return (*loaded, time.perf_counter() - start)


def run(split: str, name: str, seed: int) -> dict:
    lm, tokenizer, load_seconds = model()
    sentences = sst2["dev"] if split == "dev" else train
    start = time.perf_counter()
    row = instruct.zero_shot(lm, tokenizer, sentences, VARIANTS[name], args.batch_size)
    tokens = sum(len(tokenizer(instruct.chat_prompt(tokenizer, t, VARIANTS[name]))["input_ids"]) for t in sentences.texts)
    return {"split": split, "n": len(sentences), "seed": seed, "variant": name, **row, "prompt_tokens": tokens,
            "seconds": time.perf_counter() - start, "load_seconds": load_seconds, "threads": args.threads}


def describe(row: dict, split: str, name: str, seed: int) -> str:
    return (f"{split:<8} {name:<{WIDTH}} {100 * row['accuracy']:5.1f}% raw, {100 * row['calibrated']:5.1f}% calibrated, "
            f"{100 * row['positive_share']:3.0f}% predicted positive ({row['seconds']:.0f} s)")


def best_on_train(rows: list) -> tuple:
    """(variant, "accuracy" or "calibrated") with the highest training accuracy; the first listed wins a tie."""
    options = [(r[key], -list(VARIANTS).index(r["variant"]), r["variant"], key)
               for r in rows for key in ("accuracy", "calibrated")]
    return max(options)[2:]


course_lib.setup(threads=args.threads)
split_name = f"train{args.train_sentences}"
if not args.report:
    sst2 = data.load("sst2")
    train = instruct.training_sentences(sst2["train"]).take(args.train_sentences, seed=args.seed)
    key = lambda r: (r["split"], r["variant"], r["seed"])
    results.run_grid(args.results, [(split_name, name, args.seed) for name in VARIANTS], args.shard, key, run, describe)
    chosen, _ = best_on_train([r for r in results.read_results(args.results) if r["split"] == split_name
                               and r["seed"] == args.seed])
    results.run_grid(args.results, [("dev", chosen, args.seed)], "0/1", key, run, describe)

rows = [r for r in results.read_results(args.results) if r["seed"] == args.seed]
trained = [r for r in rows if r["split"] == split_name]
chosen, how = best_on_train(trained)
print(f"\n{trained[0]['n']} whole training sentences (seed {args.seed}), accuracy %: raw / "
      "calibrated")
for r in trained:
    mark = "  <- chosen" if r["variant"] == chosen else ""
    print(f"  {r['variant']:<{WIDTH}} {100 * r['accuracy']:5.1f} / {100 * r['calibrated']:5.1f}{mark}")
dev = next(r for r in rows if r["split"] == "dev" and r["variant"] == chosen)
print(f"loaded in {dev['load_seconds']:.1f} s; dev scored in {dev['seconds']:.0f} s on {dev['threads']} thread(s), "
      f"{dev['prompt_tokens'] / dev['seconds']:.0f} prompt tokens/s ({dev['prompt_tokens'] / dev['n']:.0f} per prompt)")
print(f"dev accuracy of the prompt chosen on training sentences ({chosen}, "
      f"{'calibrated' if how == 'calibrated' else 'raw'}): {100 * dev[how]:.1f}% of {dev['n']}")
