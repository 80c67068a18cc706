"""Checkpoint files: what a run leaves on disk, written atomically and read back safely.

A checkpoint directory holds
- ``config.json`` + ``model.safetensors``: the model (``save_pretrained``),
- the tokenizer's files (``save_pretrained``),
- ``trainer_state.safetensors``: optimizer moments and random-generator states (tensors),
- ``trainer_state.json``: step, configuration, history, cost, schedule, and what the run was
  (``run``: e.g. architecture, corpus, vocabulary), so a resume can refuse the wrong checkpoint.

No pickle anywhere: tensors go to safetensors, everything else to JSON, so opening a checkpoint
from someone else cannot run their code.
"""
import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError

MODEL_FILE = "model.safetensors"
STATE_TENSORS = "trainer_state.safetensors"
STATE_JSON = "trainer_state.json"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")  # a fast tokenizer, or a WordPiece vocabulary


def write(path, model, tokenizer, tensors: dict, meta: dict) -> Path:
    """Write model, tokenizer and trainer state to ``path`` atomically.

    Everything goes to a temporary sibling first and is swapped in with renames, so a crash
    mid-save leaves the previous checkpoint intact and never a half-written one.
    """
    path = Path(path)
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        save_file(tensors, tmp / STATE_TENSORS)
        (tmp / STATE_JSON).write_text(json.dumps(meta, indent=1))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    return path


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
    read_tensors(path / MODEL_FILE)
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
    result = model.load_state_dict(read_tensors(Path(path) / MODEL_FILE, device), strict=False)
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


def set_rng_state(tensors: dict, meta: dict, device: torch.device) -> None:
    """Inverse of ``rng_state``; a GPU state is restored only when the run resumes on a GPU."""
    torch.set_rng_state(tensors["rng.torch"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    kind, pos, has_gauss, gauss = meta["rng_numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, py_gauss = meta["rng_python"]
    random.setstate((version, tuple(state), py_gauss))
