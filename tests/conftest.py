"""Fixtures more than one test module needs."""
import pytest

from course_lib import pretraining, runtime


@pytest.fixture(scope="session")
def pretrain_tiny(tmp_path_factory):
    """``pretrain_tiny(arch, texts, **pretrain_args)``: a tiny course model pretrained for 3 steps on ``texts``.

    Saved exactly like the course's own checkpoints, so fine-tuning code can be tested on it in seconds.
    """
    def pretrain(arch: str, texts: list, **args):
        root = tmp_path_factory.mktemp(arch)
        runtime.seed_everything(0)
        # numbered, so that repeated test sentences stay distinct texts (a corpus counts a repeated text once)
        pretraining.CORPORA["tests"] = pretraining.Corpus(lambda: [f"{text} {i % 97}" for i, text in enumerate(texts)])
        try:
            pretraining.pretrain(arch, "tiny", root / arch, max_steps=3, corpus="tests", batch_size=4, progress=False,
                                 **args)
        finally:
            del pretraining.CORPORA["tests"]
        return root / arch
    return pretrain
