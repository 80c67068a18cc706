"""``python -m course_lib``: the same code the notebooks call, from a terminal.

    python -m course_lib demo
    python -m course_lib pretrain --arch bert --preset tiny --max-steps 500 --out runs/bert-tiny
    python -m course_lib finetune --checkpoint runs/bert-tiny --task sst2 --labels 500 --out runs/sst2
    python -m course_lib evaluate --checkpoint runs/sst2 --task sst2
"""
import argparse
import json
from pathlib import Path

from . import data, models, runtime
from .finetune import encode, finetune, match_tokenizer, padding_collator
from .trainer import TrainConfig, accuracy, evaluate

TASKS = {"sst2": "sst2", "korean-hate-speech": "korean_hate_speech"}


def load_classifier(checkpoint: str, num_labels: int):
    """``minilm`` (the pretrained package), or a directory written by ``pretrain``/``finetune``."""
    if checkpoint == "minilm":
        return models.load_minilm(num_labels=num_labels)
    path = Path(checkpoint)
    if not (path / "config.json").is_file():
        raise SystemExit(f"error: {checkpoint} is neither 'minilm' nor a checkpoint directory with a config.json "
                         "(write one with `python -m course_lib pretrain ... --out DIR`).")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels)
    match_tokenizer(model, tokenizer)
    return model, tokenizer


def cmd_demo(args):
    from . import demo

    demo.run(labels=args.labels, epochs=args.epochs, seed=args.seed, out_dir=args.out)


def cmd_pretrain(args):
    from .pretraining import pretrain

    trainer = pretrain(args.arch, args.preset, args.out, args.max_steps, corpus=args.corpus,
                       vocab_size=args.vocab_size, block_size=args.block_size, word2vec_epochs=args.word2vec_epochs,
                       batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps, seed=args.seed,
                       checkpoint_every=args.checkpoint_every)
    report(trainer, args.out)


def cmd_checkpoints(args):
    from .pretraining import course_checkpoint, describe_checkpoint

    for arch in args.arch:
        path = course_checkpoint(arch)
        print(f"{arch}: {path} ({describe_checkpoint(path)})")


def cmd_finetune(args):
    task = data.load(TASKS[args.task])
    model, tokenizer = load_classifier(args.checkpoint, len(task.label_names))
    train = task["train"].take(args.labels, seed=args.seed)
    steps = max(1, args.labels * args.epochs // args.batch_size)
    config = TrainConfig(max_steps=steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=steps // 10,
                         layer_decay=args.layer_decay, seed=args.seed)
    print(f"{args.task} from {task.source}: {len(train)} labels, {steps} steps")
    report(finetune(model, tokenizer, train, task["dev"], config, out_dir=args.out), args.out)


def cmd_evaluate(args):
    task = data.load(TASKS[args.task])
    model, tokenizer = load_classifier(args.checkpoint, len(task.label_names))
    split = task[args.split]
    result = evaluate(model, encode(tokenizer, split), padding_collator(tokenizer), accuracy_fn=accuracy)
    print(json.dumps({"task": args.task, "split": args.split, "examples": len(split), **result}, indent=1))


def report(trainer, out) -> None:
    print(json.dumps({"step": trainer.step, "eval": trainer.history["eval"][-1:], "out": str(out)}, indent=1))
    print(trainer.cost.summary())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course_lib", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="pretrained vs from-scratch MiniLM on a small SST-2 label budget (~3 min)")
    d.add_argument("--labels", type=int, default=500, help="labelled training sentences (default 500)")
    d.add_argument("--epochs", type=int, default=4)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="runs/demo", help="where to save demo.png")
    d.set_defaults(func=cmd_demo)

    pt = sub.add_parser("pretrain", help="self-supervised pretraining of a small GPT or BERT (resumable)")
    pt.add_argument("--arch", choices=models.ARCHS, required=True)
    pt.add_argument("--preset", choices=sorted(models.PRESETS), default="tiny")
    pt.add_argument("--max-steps", type=int, required=True,
                    help="total optimizer steps; rerun with a larger value on the same --out to resume")
    pt.add_argument("--out", required=True, help="checkpoint directory (save_pretrained + tokenizer + state)")
    pt.add_argument("--corpus", default="sst2+wiki", help="unlabeled corpora joined by '+': sst2, wiki")
    pt.add_argument("--vocab-size", type=int, default=8000)
    pt.add_argument("--block-size", type=int, default=128)
    pt.add_argument("--word2vec-epochs", type=int, default=0,
                    help="first train skip-gram vectors for the (then frozen) embedding layer (course BERT: 5)")
    pt.add_argument("--batch-size", type=int, default=32)
    pt.add_argument("--lr", type=float, default=1e-3)
    pt.add_argument("--warmup-steps", type=int, default=100)
    pt.add_argument("--checkpoint-every", type=int, default=200)
    pt.add_argument("--seed", type=int, default=0)
    pt.set_defaults(func=cmd_pretrain)

    ck = sub.add_parser("checkpoints", help="the course's own GPT and BERT for notebooks 05-06: trained once "
                                            "into the cache (~11 CPU-minutes), found there afterwards")
    ck.add_argument("--arch", nargs="+", choices=models.ARCHS, default=list(models.ARCHS))
    ck.set_defaults(func=cmd_checkpoints)

    ft = sub.add_parser("finetune", help="fine-tune a checkpoint on a labelled task")
    ft.add_argument("--checkpoint", required=True, help="'minilm' or a checkpoint directory")
    ft.add_argument("--task", choices=sorted(TASKS), default="sst2")
    ft.add_argument("--labels", type=int, default=500, help="label budget: class-balanced training examples")
    ft.add_argument("--out", required=True)
    ft.add_argument("--epochs", type=int, default=4)
    ft.add_argument("--batch-size", type=int, default=32)
    ft.add_argument("--lr", type=float, default=1e-4)
    ft.add_argument("--layer-decay", type=float, default=None, help="e.g. 0.8: lower layers learn slower")
    ft.add_argument("--seed", type=int, default=0)
    ft.set_defaults(func=cmd_finetune)

    ev = sub.add_parser("evaluate", help="loss and accuracy of a fine-tuned checkpoint")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--task", choices=sorted(TASKS), default="sst2")
    ev.add_argument("--split", default="dev")
    ev.set_defaults(func=cmd_evaluate)

    hw = sub.add_parser("homework", help="write student copies of the notebooks (solutions removed)")
    hw.add_argument("--out", default="homework")
    hw.set_defaults(func=cmd_homework)
    return p


def cmd_homework(args):
    from .homework import build

    for path in build(out_dir=Path(args.out)):
        print(path)


def main(argv=None):
    args = parser().parse_args(argv)
    runtime.setup(seed=getattr(args, "seed", 0))
    args.func(args)
