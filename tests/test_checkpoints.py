"""Checkpoints survive a kill at any instant: every crash point of a save, and real SIGKILLs, resume exactly."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from course_lib import checkpoints
from test_trainer import assert_same_weights, make

STEPS, EVERY = 6, 2


class Crash(Exception):
    """A kill, at one instant of a save."""


class CrashAt:
    """Raises ``Crash`` at the ``n``-th file-system step of the save it is armed for (writing, syncing, renaming, deleting)."""

    def __init__(self, n: int, monkeypatch):
        self.n, self.calls, self.armed = n, 0, False
        for owner, name in ((checkpoints, "save_file"), (checkpoints, "fsync"), (checkpoints.os, "replace"),
                            (checkpoints.shutil, "rmtree")):
            monkeypatch.setattr(owner, name, self.wrap(getattr(owner, name), name))

    def wrap(self, function, name):
        def step(*args, **kwargs):
            if self.armed:
                self.calls += 1
                if self.calls == self.n:
                    if name == "rmtree" and Path(args[0]).is_dir():  # killed half-way through deleting
                        next(p for p in Path(args[0]).iterdir()).unlink()
                    raise Crash
            return function(*args, **kwargs)
        return step


def resumed(path, steps=STEPS, every=EVERY):
    """A new process's run on ``path``: the checkpoint there continued, or a fresh start if there is none."""
    trainer = make(max_steps=steps, checkpoint_every=every, min_lr_ratio=0.1)
    checkpoints.recover(path)
    if checkpoints.is_resumable(path):
        trainer.resume(path)
    trainer.out_dir = path
    trainer.fit()
    return trainer


@pytest.fixture(scope="module")
def uninterrupted():
    trainer = make(max_steps=STEPS, checkpoint_every=EVERY, min_lr_ratio=0.1)
    trainer.fit()
    return trainer


@pytest.mark.parametrize("save", [1, 2], ids=["first save", "second save"])
def test_a_kill_at_any_step_of_a_save_resumes_to_the_same_run(save, uninterrupted, tmp_path, monkeypatch):
    write, n = checkpoints.write, 0
    while True:
        n += 1
        path = tmp_path / f"crash-{n}" / "ckpt"
        crash = CrashAt(n, monkeypatch)
        saves = []

        def counting_write(*args, **kwargs):
            saves.append(1)
            crash.armed = len(saves) == save
            try:
                return write(*args, **kwargs)
            finally:
                crash.armed = False
        monkeypatch.setattr(checkpoints, "write", counting_write)
        trainer = make(max_steps=STEPS, checkpoint_every=EVERY, min_lr_ratio=0.1)
        trainer.out_dir = path
        try:
            trainer.fit()
            finished = True
        except Crash:
            finished = False
        monkeypatch.setattr(checkpoints, "write", write)
        again = resumed(path)
        assert_same_weights(uninterrupted.model, again.model)
        assert [h["loss"] for h in again.history["train"]] == [h["loss"] for h in uninterrupted.history["train"]]
        assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")) == ["ckpt"]
        if finished:
            break
    assert n > 8  # the save has that many steps to be killed at, and each was tried


def test_a_leftover_old_directory_does_not_stop_saving(tmp_path):
    path = tmp_path / "ckpt"
    make(max_steps=1).save(path)
    old = checkpoints.sibling(path, "old")
    old.mkdir()
    (old / "leftover.bin").write_text("x")
    make(max_steps=1).save(path)
    assert checkpoints.is_complete(path) and not old.exists() and not checkpoints.sibling(path, "tmp").exists()


def test_between_the_two_renames_the_newer_checkpoint_is_kept(tmp_path):
    path = tmp_path / "ckpt"
    first = make(max_steps=2)
    first.fit()
    first.save(path)
    second = make(max_steps=4, min_lr_ratio=0.0)
    second.fit()
    second.save(checkpoints.sibling(path, "tmp"))  # a complete new checkpoint beside the old one
    os.replace(path, checkpoints.sibling(path, "old"))  # ... and the kill came after the first rename
    checkpoints.recover(path)
    assert checkpoints.read_meta(path)["step"] == 4
    assert not checkpoints.sibling(path, "old").exists()


CHILD = """
import sys, torch
torch.set_num_threads({threads})
sys.path.insert(0, {tests!r})
from test_checkpoints import resumed
resumed(__import__("pathlib").Path({path!r}), {steps}, 1)
print("finished")
"""
KILLED_STEPS = 60  # saving after every step: most instants of the run are inside a save


def saved_step(path) -> int | None:
    """The step of the checkpoint at ``path`` as a reader sees it now (None: none yet, or mid-swap)."""
    try:
        return checkpoints.read_meta(path)["step"]
    except Exception:
        return None


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_real_kills_resume_exactly(tmp_path):
    """SIGKILL a training process at moments spread over its run, restart it each time, until it finishes."""
    uninterrupted = make(max_steps=KILLED_STEPS, checkpoint_every=1, min_lr_ratio=0.1)
    uninterrupted.fit()
    path = tmp_path / "ckpt"
    script = CHILD.format(threads=torch.get_num_threads(), tests=str(Path(__file__).parent), path=str(path),
                          steps=KILLED_STEPS)
    steps_at_kill = []
    for delay in (0.0, 0.02, 0.05, 0.1, None):  # four kills, then a run left to finish
        start = saved_step(path)
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if delay is None:
            assert child.wait(timeout=300) == 0 and b"finished" in child.stdout.read()
            break
        while child.poll() is None and saved_step(path) == start:
            time.sleep(0.005)  # until it has trained and saved a step of its own
        time.sleep(delay)  # then a little further each time: instants spread over steps and saves
        child.send_signal(signal.SIGKILL)
        child.wait()
        steps_at_kill.append(saved_step(path))
    final = make(max_steps=KILLED_STEPS, checkpoint_every=1, min_lr_ratio=0.1).resume(path)
    assert final.step == KILLED_STEPS and all(step is None or 0 < step < KILLED_STEPS for step in steps_at_kill)
    assert_same_weights(uninterrupted.model, final.model)
