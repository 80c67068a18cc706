"""Wrong invocations end with one actionable line on stderr, the right exit status, and nothing on disk.

Exit status 2: an argument is wrong (checked before any work). Exit status 1: data, a checkpoint or
the run failed. The table runs through ``cli.main`` in this process (each case takes milliseconds);
the subprocess tests check the same contract at the real process boundary.
"""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from course_lib import cli, data, demo, models, tokenization

TEXTS = ["the film is good and the actors are great .", "a dull , tedious and far too long movie ."] * 20


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    """Paths the table refers to: checkpoints that are wrong in different ways, a file, a missing path."""
    root = tmp_path_factory.mktemp("disk")
    tokenizer = tokenization.train_bpe(TEXTS, vocab_size=300)
    lm = root / "lm"  # a pretraining checkpoint: a language model, no classification head
    models.build("gpt", "tiny", tokenizer, max_length=32).save_pretrained(lm)
    tokenizer.save_pretrained(lm)
    shutil.copytree(lm, root / "run")  # what pretrain leaves: a model and the state to resume it
    (root / "run" / "trainer_state.json").write_text("{}")
    shutil.copytree(lm, root / "truncated")
    weights = root / "truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (root / "no_config").mkdir()
    (root / "no_config" / "tokenizer.json").write_text("{}")
    (root / "a_file").write_text("not a directory")
    return {"lm": lm, "run": root / "run", "truncated": root / "truncated", "no_config": root / "no_config",
            "missing": root / "missing", "file": root / "a_file"}


FT = ["finetune", "--checkpoint", "minilm", "--out", "{out}"]
PT = ["pretrain", "--arch", "gpt", "--max-steps", "10", "--warmup-steps", "1", "--out", "{out}"]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")

BAD_INVOCATIONS = [  # argv, exit status, part of the message
    (["demo", "--labels", "0", "--out", "{out}"], 2, "argument --labels: must be an integer >= 1, not '0'"),
    (["demo", "--epochs", "two", "--out", "{out}"], 2, "argument --epochs: must be an integer >= 1, not 'two'"),
    (FT + ["--labels", "0"], 2, "argument --labels: must be an integer >= 1"),
    (FT + ["--batch-size", "0"], 2, "argument --batch-size: must be an integer >= 1"),
    (FT + ["--epochs", "-1"], 2, "argument --epochs: must be an integer >= 1"),
    (FT + ["--lr", "0"], 2, "argument --lr: must be a number > 0"),
    (FT + ["--lr", "nan"], 2, "argument --lr: must be a number > 0"),
    (FT + ["--layer-decay", "1.5"], 2, "argument --layer-decay: must be a number in (0, 1]"),
    (FT + ["--seed", "-1"], 2, "argument --seed: must be an integer >= 0"),
    (FT + ["--task", "imdb"], 2, "argument --task: invalid choice: 'imdb'"),
    (FT + ["--precision", "fp8"], 2, "argument --precision: invalid choice: 'fp8'"),
    pytest.param(FT + ["--device", "cuda"], 2, "--device cuda: PyTorch sees no such device", marks=NO_CUDA),
    (["finetune", "--checkpoint", "minilm"], 2, "the following arguments are required: --out"),
    (["finetune", "--checkpoint", "minilm", "--out", "{file}"], 2, "is a file; give a directory path"),
    (["finetune", "--checkpoint", "minilm", "--out", "{file}/x"], 2, "is a file, so it cannot hold"),
    (["finetune", "--checkpoint", "minilm", "--out", "{no_config}"], 2, "already holds files but no checkpoint"),
    (["finetune", "--checkpoint", "{run}", "--out", "{run}"], 2, "is the --checkpoint itself"),
    (["finetune", "--checkpoint", "{missing}", "--out", "{out}"], 1, "is not a directory"),
    (["finetune", "--checkpoint", "{no_config}", "--out", "{out}"], 1, "has no config.json"),
    (["finetune", "--checkpoint", "{truncated}", "--out", "{out}"], 1, "model.safetensors is corrupt or truncated"),
    (["evaluate", "--checkpoint", "{lm}", "--split", "bogus"], 2, "--split bogus: sst2 has no such split"),
    (["evaluate", "--checkpoint", "{lm}", "--task", "korean-hate-speech", "--split", "test"], 2,
     "choose one of train, dev"),
    (["evaluate", "--checkpoint", "{lm}"], 1, "without a classification head; fine-tune it first"),
    (["evaluate", "--checkpoint", "{missing}"], 1, "is not a directory"),
    (PT[:4] + ["0", "--out", "{out}"], 2, "argument --max-steps: must be an integer >= 1, not '0'"),
    (PT[:4] + ["-3", "--out", "{out}"], 2, "argument --max-steps: must be an integer >= 1, not '-3'"),
    (PT[:4] + ["10", "--warmup-steps", "100", "--out", "{out}"], 2,
     "--warmup-steps 100 must be smaller than --max-steps 10"),
    (PT + ["--decay-steps", "1"], 2, "--decay-steps 1 must be larger than --warmup-steps 1"),
    (PT[:5] + ["--decay-steps", "1", "--out", "{out}"], 2, "larger than the default warmup of 1 steps"),
    (PT + ["--batch-size", "10", "--grad-accum", "3"], 2, "--batch-size 10 does not split into --grad-accum 3"),
    (["demo", "--out", "/proc/course/demo"], 2, "/proc/course/demo cannot be created"),
    (PT + ["--min-lr-ratio", "1.5"], 2, "argument --min-lr-ratio: must be a number in [0, 1]"),
    (PT + ["--vocab-size", "10"], 2, "argument --vocab-size: must be an integer >= 300"),
    (PT + ["--block-size", "4"], 2, "argument --block-size: must be an integer >= 8"),
    (PT + ["--corpus", "nope"], 2, "unknown corpus 'nope'; choose from korean, sst2, wiki"),
    (PT + ["--corpus", "wiki+nope"], 2, "unknown corpus 'nope'"),
    (PT + ["--checkpoint-every", "-1"], 2, "argument --checkpoint-every: must be an integer >= 0"),
    (PT + ["--warmup-steps", "-1"], 2, "argument --warmup-steps: must be an integer >= 0"),
    (["pretrain", "--arch", "lstm", "--max-steps", "10", "--out", "{out}"], 2, "argument --arch: invalid choice"),
    (["bogus"], 2, "argument command: invalid choice: 'bogus'"),
    ([], 2, "the following arguments are required: command"),
]


def fill(argv: list, disk: dict, out) -> list:
    return [arg.format(out=out, **disk) for arg in argv]


COMMANDS = [["demo", "--out", "{out}"], PT, FT, ["evaluate", "--checkpoint", "{lm}"], ["checkpoints"],
            ["homework", "--out", "{out}"], ["slides", "--out", "{out}"], ["check", "--student-copies"]]
BAD_ENVIRONMENTS = [  # variable, value, part of the message
    ("COURSE_PROFILE", "laptop", "COURSE_PROFILE='laptop' is not a profile"),
    ("COURSE_CARBON_INTENSITY", "green", "COURSE_CARBON_INTENSITY='green' is not a number"),
    ("COURSE_CACHE_DIR", "{file}", "is a file, or lies under one"),
    ("COURSE_DATA_DIR", "{missing}", "is not a directory"),
    ("COURSE_GPU_PEAK_TFLOPS", "fast", "COURSE_GPU_PEAK_TFLOPS='fast' is not a positive number"),
    ("COURSE_CPU_PEAK_GFLOPS", "-1", "COURSE_CPU_PEAK_GFLOPS='-1' is not a positive number"),
]


@pytest.mark.parametrize("variable,value,phrase", BAD_ENVIRONMENTS)
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: argv[0])
def test_a_wrong_environment_is_one_line_before_any_work(argv, variable, value, phrase, disk, tmp_path, capsys,
                                                         monkeypatch):
    monkeypatch.setenv(variable, value.format(**disk))
    with pytest.raises(SystemExit) as exit_:
        cli.main(fill(argv, disk, tmp_path / "out"))
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.startswith("error: ") and err.count("\n") == 1 and phrase in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv,status,phrase", BAD_INVOCATIONS)
def test_bad_invocation(argv, status, phrase, disk, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        cli.main(fill(argv, disk, out))
    err = capsys.readouterr().err
    assert exit_.value.code == status
    assert err.startswith("error: ") and err.count("\n") == 1 and phrase in err
    assert not out.exists()


def test_debug_env_shows_the_traceback(disk, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["finetune", "--checkpoint", str(disk["missing"]), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "Traceback" in err and "CheckpointError" in err
    assert err.splitlines()[-1].startswith("error: ")


# --- the same contract across the process boundary --------------------------------------------------

@pytest.fixture
def corrupt_mirror(tmp_path):
    """A copy of the SST-2 mirror with one flipped byte in dev.tsv."""
    source = data.mirror_dir()
    if source is None:
        pytest.skip("COURSE_DATA_DIR is not set")
    shutil.copytree(source / "sst2", tmp_path / "mirror" / "sst2")
    path = tmp_path / "mirror" / "sst2" / "dev.tsv"
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01
    path.write_bytes(bytes(raw))
    return tmp_path / "mirror"


def course(args: list, **env) -> subprocess.CompletedProcess:
    """``python -m course_lib ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "course_lib", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **env})


def test_a_usage_error_is_one_line_and_status_2(tmp_path):
    out = tmp_path / "out"
    result = course(["finetune", "--checkpoint", "minilm", "--labels", "0", "--out", out])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == ("error: argument --labels: must be an integer >= 1, not '0' "
                             "(see `python -m course_lib finetune --help`)\n")
    assert not out.exists()


def test_a_corrupt_mirror_is_one_line_and_status_1(corrupt_mirror, tmp_path):
    out = tmp_path / "out"
    result = course(["finetune", "--checkpoint", "minilm", "--labels", "16", "--out", out],
                    COURSE_DATA_DIR=str(corrupt_mirror))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: checksum mismatch for ") and result.stderr.count("\n") == 1
    assert not out.exists() and not out.with_name("out.tmp").exists()


def test_debug_flag_shows_the_traceback(tmp_path):
    result = course(["--debug", "finetune", "--checkpoint", tmp_path / "missing", "--out", tmp_path / "out"])
    assert result.returncode == 1 and "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: ")


# --- the first run, offline -------------------------------------------------------------------------

def test_demo_runs_offline_on_the_bundled_sample(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    results = demo.run(labels=8, epochs=1, out_dir=tmp_path, progress=False, max_steps=2)
    out, err = capsys.readouterr()
    assert "HF_HUB_OFFLINE is set; using the bundled 200-sentence sample" in err
    assert f"SST-2 source: {data.SAMPLE_SOURCE}" in out
    assert "not comparable with benchmarks/RESULTS.md" in out
    assert "note: batch size 32 is larger than the 8 labels; using batches of 8" in out
    assert [r["model"] for r in results] == list(demo.ARMS) and (tmp_path / "demo.png").is_file()
