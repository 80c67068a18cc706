"""Checkpoint files: what a run leaves on disk, written so that a crash loses nothing, and read back safely.

A checkpoint directory holds
- ``config.json`` + ``model.safetensors``: the model (``save_pretrained``),
- the tokenizer's files (``save_pretrained``),
- ``trainer_state.safetensors``: optimizer moments and random-generator states (tensors),
- ``trainer_state.json``: step, configuration, history, cost, schedule, and what the run was
  (``run``: e.g. architecture, corpus, vocabulary), so a resume can refuse the wrong checkpoint;
  written last, it marks the directory complete (``write``, ``recover``).

No pickle anywhere: tensors go to safetensors, everything else to JSON, so opening a checkpoint
from someone else cannot run their code.
"""
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .errors import CheckpointError

MODEL_FILE = "model.safetensors"
STATE_TENSORS = "trainer_state.safetensors"
STATE_JSON = "trainer_state.json"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")  # a fast tokenizer, or a WordPiece vocabulary


def write(path, model, tokenizer, tensors: dict, meta: dict) -> Path:
    """Write model, tokenizer and trainer state to ``path`` so that a kill at any instant loses nothing.

    The new checkpoint is written beside the old one (``path.tmp``), its files flushed to disk and
    its trainer state written last, as the mark that it is complete. Then two renames swap it in
    (``path`` -> ``path.old``, ``path.tmp`` -> ``path``) and the old one is deleted. Whatever
    instant a crash hits, ``recover`` finds either a complete checkpoint at ``path`` or the pieces
    to finish or undo the swap; it runs before every write, and before a run looks for a checkpoint.
    """
    path = Path(path)
    recover(path)
    tmp = sibling(path, "tmp")
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        save_file(tensors, tmp / STATE_TENSORS)
        for file in tmp.iterdir():
            fsync(file)
        write_atomically(tmp / STATE_JSON, json.dumps(meta, indent=1))  # last: the checkpoint is complete
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_in(path)
    return path


def sibling(path: Path, suffix: str) -> Path:
    return path.with_name(f"{path.name}.{suffix}")


def fsync(path: Path) -> None:
    """Flush a file (or a directory's list of names) to the disk, so a power cut cannot undo it."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems cannot sync a directory; the renames are atomic all the same
    finally:
        os.close(descriptor)


def write_atomically(file: Path, text: str) -> None:
    """Write ``text`` to ``file`` so that it is there whole or not at all."""
    part = sibling(file, "part")
    part.write_text(text)
    fsync(part)
    os.replace(part, file)
    fsync(file.parent)


def is_complete(path: Path) -> bool:
    """Whether a checkpoint directory was written to the end (its trainer state, written last, is there)."""
    return (path / STATE_JSON).is_file()


def swap_in(path: Path) -> None:
    """Replace ``path`` by its complete ``.tmp`` sibling: rename the old one aside, rename the new one in, delete the old."""
    tmp, old = sibling(path, "tmp"), sibling(path, "old")
    if path.exists():
        os.replace(path, old)
        fsync(path.parent)
    os.replace(tmp, path)
    fsync(path.parent)
    shutil.rmtree(old, ignore_errors=True)


def recover(path) -> None:
    """Bring ``path`` back to one complete checkpoint (or none) after a crash in ``write``.

    A complete ``.tmp`` is the newest state: its swap is finished. An incomplete one is deleted. An
    ``.old`` beside a checkpoint is a deletion that did not finish; without one, it is the previous
    checkpoint, put back. Only a process that may write ``path`` should call this (the course's
    checkpoints are trained under ``exclusive``).
    """
    path = Path(path)
    tmp, old = sibling(path, "tmp"), sibling(path, "old")
    if tmp.exists():
        if is_complete(tmp):
            swap_in(path)
            return
        shutil.rmtree(tmp)
    if old.exists():
        if path.exists():
            shutil.rmtree(old)
        else:
            os.replace(old, path)


def exclusive(path) -> FileLock:
    """A lock held while ``path`` is written: ``with exclusive(path): ...``.

    Two processes that both find a checkpoint missing — two notebooks opened at once, two test
    workers — would otherwise both train it into the same directory. With the lock the second waits,
    then finds the first one's checkpoint complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path.with_name(path.name + ".lock"))


def is_resumable(path) -> bool:
    """Whether ``path`` holds a run's trainer state (a run to continue, not only a model)."""
    return (Path(path) / STATE_JSON).is_file()


def read_meta(path) -> dict:
    """The JSON half of a run's trainer state."""
    file = Path(path) / STATE_JSON
    if not file.is_file():
        raise CheckpointError(f"{file} is missing: {path} holds no training run to continue or describe.")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{file} is corrupt ({err.msg}); delete {path} and train again.") from None


def read_tensors(file: Path, device="cpu") -> dict:
    """A safetensors file's tensors, or an error naming the file if it is missing or damaged."""
    if not file.is_file():
        raise CheckpointError(f"{file} is missing; the checkpoint is incomplete: train it again.")
    try:
        return load_file(file, device=str(device))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{file} is corrupt or truncated ({err}); delete it and train again.") from None


def check_tensors(file: Path) -> None:
    """That a safetensors file is present and whole, from its header alone: no tensor is loaded."""
    if not file.is_file():
        raise CheckpointError(f"{file} is missing; the checkpoint is incomplete: train it again.")
    try:
        with safe_open(file, "pt"):
            pass  # opening checks the header and that the file covers every tensor it lists
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{file} is corrupt or truncated ({err}); delete it and train again.") from None


def read_state(path, device="cpu") -> tuple:
    """(tensors, meta) of a run's trainer state, both checked for presence and integrity."""
    meta = read_meta(path)
    return read_tensors(Path(path) / STATE_TENSORS, device), meta


def require_model(path, kind: str = "model") -> Path:
    """Check that ``path`` is a complete saved model before any work starts; return it.

    ``kind``: ``"model"`` (any checkpoint ``from_pretrained`` can load, with its tokenizer) or
    ``"classifier"`` (one written by fine-tuning, with its classification head).
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a directory; give a checkpoint written by "
                              "`python -m course_lib pretrain` or `finetune` (--out DIR).")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path} has no config.json, so it is no saved model; give a checkpoint written by "
                              "`python -m course_lib pretrain` or `finetune` (--out DIR).")
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{config_file} is corrupt ({err.msg}); train the checkpoint again.") from None
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(f"{path} has no tokenizer ({' or '.join(TOKENIZER_FILES)}); the checkpoint is "
                              "incomplete: train it again.")
    check_tensors(path / MODEL_FILE)
    architectures = config.get("architectures") or []
    if kind == "classifier" and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise CheckpointError(f"{path} is a {', '.join(architectures) or 'model'} without a classification head; "
                              "fine-tune it first (`python -m course_lib finetune --checkpoint "
                              f"{path} --out DIR`) and evaluate DIR.")
    return path


def require_same_run(path, saved: dict, asked: dict) -> None:
    """Refuse to continue a run whose settings differ from those asked for, naming each difference."""
    differing = [key for key, value in asked.items() if saved.get(key) != value]
    if differing:
        was = {key: repr(saved[key]) if key in saved else "not recorded" for key in differing}
        raise CheckpointError(f"{path} holds another run, trained with "
                              + "; ".join(f"{key} {was[key]} (asked: {asked[key]!r})" for key in differing)
                              + ". Ask for the same settings to continue it, or write to another directory.")


def load_weights(model, path, device="cpu") -> None:
    """Load saved weights into ``model``; only tied copies (e.g. the LM head) may be absent."""
    try:
        result = model.load_state_dict(read_tensors(Path(path) / MODEL_FILE, device), strict=False)
    except RuntimeError as err:  # shapes that differ: another model's checkpoint
        shapes = "; ".join(line.strip() for line in str(err).splitlines() if "size mismatch" in line)
        raise CheckpointError(f"{path} does not match this model: {shapes or err}") from None
    untied_missing = set(result.missing_keys) & set(dict(model.named_parameters()))
    if untied_missing or result.unexpected_keys:
        raise CheckpointError(f"{path} does not match this model: missing {sorted(untied_missing)}, "
                              f"unexpected {sorted(result.unexpected_keys)}")


# --- random generators: part of a run's state, so a resumed run draws the same numbers -----------

def rng_state(device: torch.device) -> tuple:
    """(tensors, meta) of every random generator a run uses: Python, NumPy, torch, and its GPU.

    Only the GPU the run trains on is saved, so the checkpoint resumes on a machine with another
    number of GPUs.
    """
    tensors = {"rng.torch": torch.get_rng_state()}
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    np_state = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
    py_version, py_state, py_gauss = random.getstate()
    meta = {"rng_numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "rng_python": [py_version, list(py_state), py_gauss]}
    return tensors, meta


def rng_states(per_process: list) -> tuple:
    """(tensors, meta) of every process's ``rng_state``, rank 0's under the names a one-process run uses."""
    tensors, meta = dict(per_process[0][0]), dict(per_process[0][1])
    for rank, (rank_tensors, rank_meta) in enumerate(per_process[1:], start=1):
        tensors.update({f"rng.{rank}.{key.removeprefix('rng.')}": value for key, value in rank_tensors.items()})
        meta.setdefault("rng_ranks", {})[str(rank)] = rank_meta
    return tensors, meta


def set_rng_state(tensors: dict, meta: dict, device: torch.device, rank: int = 0) -> bool:
    """Inverse of ``rng_states`` for process ``rank``; False if the run had no such process.

    A GPU state is restored only when the run resumes on a GPU.
    """
    if rank:
        prefix = f"rng.{rank}."
        if str(rank) not in meta.get("rng_ranks", {}):
            return False
        tensors = {f"rng.{key.removeprefix(prefix)}": value for key, value in tensors.items() if key.startswith(prefix)}
        meta = meta["rng_ranks"][str(rank)]
    torch.set_rng_state(tensors["rng.torch"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    kind, pos, has_gauss, gauss = meta["rng_numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, py_gauss = meta["rng_python"]
    random.setstate((version, tuple(state), py_gauss))
    return True
