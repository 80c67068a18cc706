"""``python -m course_lib``: the same code the notebooks call, from a terminal.

    python -m course_lib demo
    python -m course_lib pretrain --arch bert --preset tiny --max-steps 500 --out runs/bert-tiny
    python -m course_lib finetune --checkpoint runs/bert-tiny --task sst2 --labels 500 --out runs/sst2
    python -m course_lib evaluate --checkpoint runs/sst2 --task sst2
    python -m course_lib slides
    python -m course_lib translate --lang ko --stale
    python -m course_lib check homework/03_attention_transformer.ipynb

Every argument is checked before any work starts. A problem is one line on stderr, ``error: ...``,
with exit status 2 for a wrong argument and 1 for bad data, a bad checkpoint or a failed run;
``--debug`` (or COURSE_DEBUG=1) adds the traceback.
"""
import argparse
import json
import math
import os
import sys
import traceback
from pathlib import Path

import torch
from transformers import AutoConfig

from . import checkpoints, costs, data, distributed, finetune, hardware, models, pretraining, runtime
from .errors import CheckpointError, ConfigError, CourseError
from .finetune import MINILM
from .hardware import DEVICES, PRECISIONS, pick_device, pick_precision
from .trainer import accuracy, evaluate

TASKS = {"sst2": "sst2", "korean-hate-speech": "korean_hate_speech"}
DEBUG_ENV = "COURSE_DEBUG"
MIN_VOCAB = 300  # GPT's byte-level BPE starts from 256 bytes plus its special token; BERT needs 5 specials
MIN_BLOCK = 8


class UsageError(ConfigError):
    """An argument rejected before any work starts (exit status 2, like argparse's own errors)."""


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (``error: ...`` and where help is), without the usage block."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# --- argument types: each refuses a value with a message that says what would be accepted ---------

def integer(low: int, why: str = ""):
    """An argparse type for integers of at least ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}{why}, not {text!r}")
        return value
    return parse


def real(accepts, what: str):
    """An argparse type for finite numbers that ``accepts(value)``, described as ``what``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and accepts(value)):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
        return value
    return parse


positive = integer(1)
count = integer(0)
positive_real = real(lambda v: v > 0, "a number > 0")
fraction = real(lambda v: 0 < v <= 1, "a number in (0, 1]")


def output_dir(text: str) -> Path:
    """An argparse type for a directory to write into; nothing is left on disk until a result is saved.

    A directory that does not exist yet is created and removed again at once: a place that cannot
    be written (a read-only or virtual file system, a file in the way) fails here, before any work.
    """
    path = Path(text)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        where = "" if existing == path else f", so it cannot hold {path}"
        raise argparse.ArgumentTypeError(f"{existing} is a file{where}; give a directory path")
    if not os.access(existing, os.W_OK):
        raise argparse.ArgumentTypeError(f"{existing} is not writable; give a directory you can write to")
    if existing != path:
        try:
            path.mkdir(parents=True)
        except OSError as err:
            raise argparse.ArgumentTypeError(f"{path} cannot be created ({err.strerror}); give a directory "
                                             "you can write to") from None
        for made in (path, *path.parents):
            if made == existing:
                break
            made.rmdir()
    return path


def checkpoint_out(text: str) -> Path:
    """An ``output_dir`` that a checkpoint may replace: new, empty, or already a checkpoint.

    A checkpoint is saved by swapping the whole directory, so a directory of other files would be lost.
    """
    path = output_dir(text)
    if path.is_dir() and any(path.iterdir()) and not checkpoints.is_resumable(path):
        raise argparse.ArgumentTypeError(f"{path} already holds files but no checkpoint, and saving would replace "
                                         "them; give a new or empty directory")
    return path


# --- checks that need more than one argument, or a look at the disk; all before any work ---------

def check_device(args) -> None:
    """``--device cuda`` on a machine without CUDA fails here, not after the data has loaded."""
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if args.device in available and not available[args.device]():
        raise UsageError(f"--device {args.device}: PyTorch sees no such device on this machine; "
                         "use --device auto or cpu")


def check_pretrain(args) -> None:
    check_device(args)
    unknown = [name for name in args.corpus.split("+") if name not in pretraining.CORPORA]
    if unknown:
        raise UsageError(f"--corpus {args.corpus}: unknown corpus {', '.join(map(repr, unknown))}; choose from "
                         f"{', '.join(sorted(pretraining.CORPORA))}, joined with '+' (e.g. sst2+wiki)")
    warmup = args.warmup_steps if args.warmup_steps is not None else pretraining.default_warmup(args.max_steps)
    if args.warmup_steps is not None and args.warmup_steps >= args.max_steps:
        raise UsageError(f"--warmup-steps {args.warmup_steps} must be smaller than --max-steps {args.max_steps}; "
                         f"e.g. --warmup-steps {args.max_steps // 10}")
    if args.decay_steps is not None and args.decay_steps <= warmup:
        given = f"--warmup-steps {warmup}" if args.warmup_steps is not None else f"the default warmup of {warmup} steps"
        raise UsageError(f"--decay-steps {args.decay_steps} must be larger than {given}")
    if args.batch_size is not None and args.grad_accum is not None and args.batch_size % args.grad_accum:
        raise UsageError(f"--batch-size {args.batch_size} does not split into --grad-accum {args.grad_accum} "
                         "micro-batches; give a batch size divisible by it")


def check_finetune(args) -> None:
    check_device(args)
    if args.checkpoint == MINILM:
        return
    if Path(args.checkpoint).resolve() == args.out.resolve():
        raise UsageError(f"--out {args.out} is the --checkpoint itself, which fine-tuning would replace; "
                         "give another --out")
    try:
        checkpoints.require_model(args.checkpoint)
    except CheckpointError as err:
        raise CheckpointError(f"{err} Or give --checkpoint {MINILM}, the pretrained MiniLM.") from None


def check_evaluate(args) -> None:
    check_device(args)
    task = TASKS[args.task]
    if args.split not in data.SPLITS[task]:
        raise UsageError(f"--split {args.split}: {args.task} has no such split; choose one of "
                         f"{', '.join(data.SPLITS[task])}")
    path = checkpoints.require_model(args.checkpoint, "classifier")
    labels = AutoConfig.from_pretrained(path).num_labels
    if labels != len(data.LABEL_NAMES[task]):
        raise CheckpointError(f"{path} classifies into {labels} labels but {args.task} has "
                              f"{len(data.LABEL_NAMES[task])}; evaluate it on the task it was fine-tuned on")


def check_check(args) -> None:
    """Every notebook to grade must exist, be a notebook and have graded exercises, before any runs."""
    from . import grader

    if bool(args.paths) == args.student_copies:
        raise UsageError("give the notebooks to check, or --student-copies (not both)")
    for path in args.paths:
        try:
            nb = grader.read_notebook(path)
        except CourseError as err:
            raise UsageError(str(err)) from None
        if not any(grader.graded(cell) for cell in nb.cells):
            raise UsageError(f"{path} has no graded exercises (no exercises.grade(...) call); give a course notebook")


def no_check(args) -> None:
    """Commands whose arguments argparse checks completely."""


# --- the commands ------------------------------------------------------------------------------

def cmd_demo(args):
    from . import demo

    demo.run(labels=args.labels, epochs=args.epochs, seed=args.seed, out_dir=args.out)


# pretrain's options that are training settings: not given, a new run takes the course's default and a
# continued run keeps what it was started with (pretraining.resumed_settings)
RUN_SETTINGS = {"batch_size": 32, "grad_accum": 1, "lr": 1e-3, "warmup_steps": None, "decay_steps": None,
                "min_lr_ratio": 0.1, "seed": 0, "log_every": 1, "checkpoint_every": 200}


def cmd_pretrain(args):
    given = {key: getattr(args, key) for key in RUN_SETTINGS if getattr(args, key) is not None}
    defaults = {key: value for key, value in RUN_SETTINGS.items() if value is not None}
    checkpoints.recover(args.out)  # a save a crash interrupted: finished or undone before anything is read
    resuming = checkpoints.is_resumable(args.out)
    trainer = pretraining.pretrain(
        args.arch, args.preset, args.out, args.max_steps, corpus=args.corpus, vocab_size=args.vocab_size,
        block_size=args.block_size, word2vec_epochs=args.word2vec_epochs, device=args.device,
        precision=args.precision, compile=args.compile, num_workers=args.num_workers, announce=say,
        **(given if resuming else {**defaults, **given}))
    report(trainer, args.out)


def cmd_checkpoints(args):
    for arch in args.arch:
        path = pretraining.course_checkpoint(arch)
        print(f"{arch}: {path} ({pretraining.describe_checkpoint(path)})")


def cmd_finetune(args):
    task = data.load(TASKS[args.task])
    train = task["train"].take(args.labels, seed=args.seed)
    model, tokenizer = finetune.load_classifier(args.checkpoint, len(task.label_names))
    lr = args.lr or finetune.learning_rate(MINILM if args.checkpoint == MINILM else "course")
    config = finetune.recipe(args.labels, lr, args.seed, epochs=args.epochs, batch_size=args.batch_size,
                             layer_decay=args.layer_decay, device=args.device, precision=args.precision, progress=True)
    print(f"{args.task} from {task.source}: {len(train)} labels, {config.max_steps} steps at lr {lr:g}")
    report(finetune.finetune(model, tokenizer, train, task["dev"], config, out_dir=args.out), args.out)


def cmd_evaluate(args):
    task = data.load(TASKS[args.task])
    split = task[args.split]
    model, tokenizer = finetune.load_classifier(args.checkpoint, len(task.label_names))
    device = pick_device(args.device)
    result = evaluate(model.to(device), finetune.encode(tokenizer, split), finetune.padding_collator(tokenizer),
                      accuracy_fn=accuracy, precision=pick_precision(args.precision, device))
    print(json.dumps({"task": args.task, "split": args.split, "examples": len(split), "device": str(device),
                      **result}, indent=1))


def edition(lang: str) -> Path:
    """The notebooks of an edition: the English source, or a translation written by ``translate``."""
    from . import translate

    folder = Path("notebooks") if lang == "en" else translate.edition_dir(lang)
    if not any(folder.glob("[0-9][0-9]_*.ipynb")):
        raise CourseError(f"{folder}/ holds no notebooks; write the {lang} edition first: "
                          f"`python -m course_lib translate --lang {lang}`")
    return folder


def cmd_homework(args):
    from .homework import build

    out = args.out if args.lang == "en" or args.out != Path("homework") else Path(f"homework_{args.lang}")
    for path in build(notebooks_dir=edition(args.lang), out_dir=out):
        print(path)


def cmd_check(args):
    from . import grader
    from .homework import build

    paths = build() if args.student_copies else args.paths
    expected = grader.NOT_ATTEMPTED if args.student_copies else grader.CORRECT
    results = []
    for path in paths:
        print(f"{path}: running it ...", flush=True)
        found = grader.check_notebook(path, timeout=args.timeout, memory_gb=args.memory_gb)
        print(grader.report(found), flush=True)
        results += found
    if len(paths) > 1:
        grader.write_csv(results, args.csv)
        print(f"summary of {len(paths)} notebooks: {args.csv}")
    matching = sum(r.status == expected for r in results)
    print(f"{matching} of {len(results)} graded exercises {expected}")
    sys.exit(0 if matching == len(results) else 1)


def cmd_slides(args):
    from . import slides

    notebooks = args.notebooks or edition(args.lang)
    out = args.out if args.lang == "en" or args.out != Path("slides/build") else Path(f"slides/build/{args.lang}")
    for path in slides.build(notebooks, out):
        print(path)
    print(f"open {out / 'index.html'} in a browser (no network needed)")


def cmd_translate(args):
    from . import translate

    if args.stale:
        print(translate.stale_report(args.lang))
        return
    for path in translate.build(args.lang):
        print(path)


def cmd_doctor(args):
    from . import doctor

    sys.exit(doctor.run())


def say(text: str) -> None:
    """Print once, from rank 0, however many processes torchrun started."""
    if distributed.is_main():
        print(text)


def report(trainer, out) -> None:
    say(json.dumps({"step": trainer.step, "eval": trainer.history["eval"][-1:], "out": str(out)}, indent=1))
    say(trainer.cost.summary())


# --- the parser ----------------------------------------------------------------------------------

def add_hardware(p) -> None:
    p.add_argument("--device", choices=DEVICES, default=None,
                   help="where to run (default: the CPU under the default cpu profile, a GPU if there is one "
                        f"under {runtime.PROFILE_ENV}=gpu; auto: a GPU if there is one)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="number format of the computation (default: bf16 on GPUs that have it, else fp32)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic GPU kernels (slower); CPU runs repeat exactly without it")


def command(sub, name: str, summary: str) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` opens with the sentence the list of commands gives it."""
    return sub.add_parser(name, help=summary, description=summary)


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m course_lib", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help=f"show the traceback of an error (or set {DEBUG_ENV}=1)")
    sub = p.add_subparsers(dest="command", required=True)

    d = command(sub, "demo", "pretrained vs from-scratch MiniLM on a small SST-2 label budget (~3 min)")
    d.add_argument("--labels", type=positive, default=500, help="labelled training sentences (default 500)")
    d.add_argument("--epochs", type=positive, default=finetune.EPOCHS,
                   help=f"passes over the labels, at least {finetune.MIN_STEPS} steps (default {finetune.EPOCHS})")
    d.add_argument("--seed", type=count, default=0, help="which labels are drawn and how weights start (default 0)")
    d.add_argument("--out", type=output_dir, default="runs/demo", help="where to save demo.png")
    d.set_defaults(func=cmd_demo, check=no_check)

    pt = command(sub, "pretrain", "self-supervised pretraining of a small GPT or BERT (resumable)")
    pt.add_argument("--arch", choices=models.ARCHS, required=True)
    pt.add_argument("--preset", choices=sorted(models.PRESETS), default="tiny")
    pt.add_argument("--max-steps", type=positive, required=True,
                    help="total optimizer steps; rerun on the same --out to continue an interrupted run, "
                         "or with a larger value to extend a finished one")
    pt.add_argument("--out", type=checkpoint_out, required=True,
                    help="checkpoint directory (save_pretrained + tokenizer + state)")
    pt.add_argument("--corpus", default="sst2+wiki", help="unlabeled corpora joined by '+': sst2, wiki")
    pt.add_argument("--vocab-size", type=integer(MIN_VOCAB, " (a tokenizer's base alphabet and special tokens "
                                                            "need room)"), default=8000)
    pt.add_argument("--block-size", type=integer(MIN_BLOCK), default=128, help="tokens per training sequence")
    pt.add_argument("--word2vec-epochs", type=count, default=0,
                    help="first train skip-gram vectors for the (then frozen) embedding layer (course BERT: 5)")
    given = "; continuing a run, the run's own"
    pt.add_argument("--batch-size", type=positive, help=f"sequences per optimizer step (default 32{given})")
    pt.add_argument("--grad-accum", type=positive,
                    help=f"micro-batches per step, for a batch that does not fit in memory at once (default 1{given})")
    pt.add_argument("--lr", type=positive_real, help=f"peak learning rate (default 1e-3{given})")
    pt.add_argument("--warmup-steps", type=count,
                    help="must be smaller than --max-steps (default: 100, or a tenth of --max-steps if smaller"
                         f"{given})")
    pt.add_argument("--decay-steps", type=positive,
                    help="the step where the learning rate's decay ends (default: --max-steps of the run's start); "
                         "fixed when a run starts, so extending it never makes the rate jump back up")
    pt.add_argument("--min-lr-ratio", type=real(lambda v: 0 <= v <= 1, "a number in [0, 1]"),
                    help="the rate after the decay, as a share of the peak (default 0.1; 0 makes the run "
                         f"impossible to extend{given})")
    pt.add_argument("--log-every", type=positive,
                    help=f"steps between reads of the loss (each read waits for a GPU; default 1{given})")
    pt.add_argument("--checkpoint-every", type=count, help=f"steps between checkpoints, 0: only at the end "
                                                           f"(default 200{given})")
    pt.add_argument("--seed", type=count, help=f"initial weights, data order and masks (default 0{given})")
    pt.add_argument("--compile", action="store_true", help="torch.compile the model (faster on a GPU, after a "
                                                           "minute of compiling)")
    pt.add_argument("--num-workers", type=count, default=0,
                    help="processes that collate the next batches while the GPU computes (default 0: this process)")
    add_hardware(pt)
    pt.set_defaults(func=cmd_pretrain, check=check_pretrain)

    ck = command(sub, "checkpoints", "the course's own GPT and BERT for notebooks 05-06: trained once "
                                     "into the cache (~14 minutes on 2 cores), found there afterwards; "
                                     "--arch korean-bert: notebook 11's Korean BERT (~4 minutes)")
    ck.add_argument("--arch", nargs="+", choices=sorted({name for name, _ in pretraining.RECIPES}),
                    default=list(models.ARCHS))
    ck.set_defaults(func=cmd_checkpoints, check=no_check)

    ft = command(sub, "finetune", "fine-tune a checkpoint on a labelled task")
    ft.add_argument("--checkpoint", required=True, help=f"'{MINILM}' or a checkpoint directory")
    ft.add_argument("--task", choices=sorted(TASKS), default="sst2")
    ft.add_argument("--labels", type=positive, default=500, help="label budget: class-balanced training examples")
    ft.add_argument("--out", type=checkpoint_out, required=True)
    ft.add_argument("--epochs", type=positive, default=finetune.EPOCHS,
                    help=f"passes over the labels, at least {finetune.MIN_STEPS} steps (default {finetune.EPOCHS})")
    ft.add_argument("--batch-size", type=positive, default=finetune.BATCH_SIZE,
                    help=f"at most --labels (a larger one is cut; default {finetune.BATCH_SIZE})")
    ft.add_argument("--lr", type=positive_real, default=None,
                    help=f"peak learning rate (default {finetune.learning_rate(MINILM):g} for {MINILM}, "
                         f"{finetune.learning_rate('course'):g} for a course checkpoint)")
    ft.add_argument("--layer-decay", type=fraction, default=None, help="e.g. 0.8: lower layers learn slower")
    ft.add_argument("--seed", type=count, default=0)
    add_hardware(ft)
    ft.set_defaults(func=cmd_finetune, check=check_finetune)

    ev = command(sub, "evaluate", "loss and accuracy of a fine-tuned checkpoint")
    ev.add_argument("--checkpoint", required=True, help="a directory written by finetune")
    ev.add_argument("--task", choices=sorted(TASKS), default="sst2")
    ev.add_argument("--split", default="dev", help="; ".join(f"{name}: {', '.join(data.SPLITS[task])}"
                                                             for name, task in TASKS.items()))
    add_hardware(ev)
    ev.set_defaults(func=cmd_evaluate, check=check_evaluate)

    dr = command(sub, "doctor", "what is installed, found and assumed (versions, GPU, data, cache); "
                                "one line per problem with its fix")
    dr.set_defaults(func=cmd_doctor, check=no_check)

    hw = command(sub, "homework", "write student copies of the notebooks (solutions removed)")
    hw.add_argument("--out", type=output_dir, default="homework",
                    help="folder for the student copies (default homework)")
    hw.add_argument("--lang", choices=["en", "ko"], default="en",
                    help="the edition to copy: en (notebooks/) or ko (notebooks_ko/, into homework_ko/)")
    hw.set_defaults(func=cmd_homework, check=no_check)

    gr = command(sub, "check", "run notebooks (student copies a learner worked on) and grade each graded "
                               "exercise: correct / not attempted / wrong, with the check's hint / crashed")
    gr.add_argument("paths", nargs="*", type=Path, metavar="NOTEBOOK", help="one or more .ipynb files")
    gr.add_argument("--csv", type=Path, default=Path("grades.csv"),
                    help="where the summary of several notebooks goes (default grades.csv)")
    gr.add_argument("--timeout", type=positive, default=900, help="seconds one cell may run (default 900)")
    gr.add_argument("--memory-gb", type=count, default=8,
                    help="GiB of memory the kernel of each notebook may use (default 8; 0: no limit; enforced on Linux)")
    gr.add_argument("--student-copies", action="store_true",
                    help="for instructors: write every student copy into homework/ and check that each runs to "
                         "the end with every graded exercise 'not attempted' (all notebooks: about 20-25 minutes "
                         "on 2 cores with the course checkpoints cached)")
    gr.set_defaults(func=cmd_check, check=check_check)

    sl = command(sub, "slides", "build the lecture decks: offline reveal.js HTML from each notebook's "
                                "slide cells (slides/README.md)")
    sl.add_argument("--notebooks", type=Path, default=None,
                    help="folder of NN_name.ipynb notebooks (default: the --lang edition's)")
    sl.add_argument("--lang", choices=["en", "ko"], default="en",
                    help="the edition's decks: en (notebooks/) or ko (notebooks_ko/, into slides/build/ko)")
    sl.add_argument("--out", type=output_dir, default="slides/build",
                    help="folder for the decks and their reveal.js/MathJax files (default slides/build)")
    sl.set_defaults(func=cmd_slides, check=no_check)

    tr = command(sub, "translate", "write the Korean edition, notebooks_ko/: each notebook with its markdown cells "
                                   "from translations/ko/NN_name.md, code and outputs unchanged")
    tr.add_argument("--lang", choices=["ko"], default="ko", help="the edition's language (default ko)")
    tr.add_argument("--stale", action="store_true",
                    help="list the markdown cells whose translation is missing or older than their English text")
    tr.set_defaults(func=cmd_translate, check=no_check)
    return p


def check_environment() -> None:
    """The course's environment variables are input too: each is read once here, before any work starts."""
    runtime.profile()
    runtime.cache_dir()
    costs.carbon_intensity()
    for name in (hardware.PEAK_ENV, hardware.WATTS_ENV, hardware.CPU_PEAK_ENV):
        hardware.env_float(name)
    mirror = data.mirror_dir()
    if mirror is not None and not mirror.is_dir():
        raise ConfigError(f"{data.MIRROR_ENV}={mirror} is not a directory; point it at a copy of the course data "
                          "(shared/data), or unset it to download the data")


def main(argv=None) -> None:
    """Check the arguments, then run the command; a ``CourseError`` ends it with one line on stderr.

    So does an ``OSError`` (a file that cannot be read or written: permissions, a full disk): the
    machine's problem to fix, not the course's bug, so it gets the same one line.
    """
    debug = os.environ.get(DEBUG_ENV) == "1"
    try:
        args = parser().parse_args(argv)
        debug = debug or args.debug
        if args.command != "doctor":  # the doctor reports a wrong environment as a problem, with its fix
            check_environment()
        args.check(args)
        runtime.setup(seed=getattr(args, "seed", None) or 0,
                      deterministic=args.command == "checkpoints" or getattr(args, "deterministic", False))
        args.func(args)
    except (CourseError, OSError) as err:
        if debug:
            traceback.print_exc()
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2 if isinstance(err, UsageError) else 1)
    finally:
        distributed.shutdown()
