"""A masked-LM run under torchrun, for tests/test_distributed.py: ``python -m torch.distributed.run ... ddp_run.py MODE OUT``.

MODE ``masks``: every process writes the masks of its first batch and a dropout draw to OUT/rank<r>.pt.
MODE ``crash``: the run dies while collating step 5 (after its checkpoint at step 3); ``full`` runs to the end.
Either way the checkpoint goes to OUT/ckpt; a second ``full`` on the same OUT resumes it. The tokenizer is
trained once, by the first call on OUT (``tokenizer``): trained on so little text it has ties, which each
process would break in its own way.
"""
import sys
from pathlib import Path

import torch

from transformers import AutoTokenizer

from course_lib import checkpoints, distributed, objectives, pretraining
from course_lib.tokenization import train_tokenizer
from course_lib.trainer import Trainer, TrainConfig

TEXTS = [f"the film is {w} and the actors are {v} ." for w in ("good", "bad", "long", "funny", "dull")
         for v in ("great", "awful", "fine", "young")] * 10


class Crash(Exception):
    pass


def main(mode: str, out: Path) -> None:
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(out.parent / "tokenizer")
    blocks = pretraining.pack(tokenizer, TEXTS, 16)
    torch.manual_seed(0)
    model = pretraining.build_model("bert", "tiny", tokenizer, 16, dropout=0.1)
    collate = objectives.masked_lm_collator(tokenizer, positions=True)
    calls = []

    def watched(examples):
        calls.append(1)
        if mode == "crash" and len(calls) == 5:
            raise Crash
        return collate(examples)

    trainer = Trainer(model, blocks, watched, TrainConfig(max_steps=6, batch_size=8, lr=3e-3, checkpoint_every=3,
                                                          min_lr_ratio=0.1, progress=False), out_dir=out / "ckpt")
    if mode == "masks":
        batch = trainer.step_batches(0)[0][0]
        torch.save({"labels": batch["labels"], "dropout": torch.nn.functional.dropout(torch.ones(64), 0.5)},
                   out / f"rank{distributed.rank()}.pt")
        return
    if checkpoints.is_resumable(out / "ckpt"):
        trainer.resume(out / "ckpt")
    try:
        trainer.fit()
    except Crash:
        sys.exit(3)
    distributed.shutdown()


def tokenizer(folder: Path) -> None:
    """Train the runs' tokenizer once, into ``folder``."""
    train_tokenizer("bert", TEXTS, vocab_size=60).save_pretrained(folder)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
