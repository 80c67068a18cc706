"""The command line: every subcommand documents itself; pretrain resumes; finetune/evaluate use its output."""
import json
import math
import subprocess
import sys

import pytest
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from course_lib import cli, data, finetune, pretraining, runtime


def test_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "course_lib", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "{demo,pretrain,checkpoints,finetune,evaluate,doctor,homework,check,slides,translate}" in result.stdout


@pytest.mark.parametrize("command", ["demo", "pretrain", "checkpoints", "finetune", "evaluate", "doctor",
                                     "homework", "check", "slides", "translate"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.parser().parse_args([command, "--help"])
    assert exit_.value.code == 0 and "usage: python -m course_lib " + command in capsys.readouterr().out


def test_pretrain_resume_finetune_evaluate(tmp_path, capsys):
    if data.mirror_dir() is None:
        pytest.skip("COURSE_DATA_DIR is not set")
    ckpt = tmp_path / "gpt"
    common = ["pretrain", "--arch", "gpt", "--preset", "tiny", "--out", str(ckpt), "--corpus", "wiki",
              "--vocab-size", "500", "--block-size", "32", "--batch-size", "8", "--warmup-steps", "1"]
    cli.main(common + ["--max-steps", "2"])
    first = json.loads((ckpt / "trainer_state.json").read_text())
    capsys.readouterr()
    cli.main(common + ["--max-steps", "4"])
    second = json.loads((ckpt / "trainer_state.json").read_text())
    assert (first["step"], second["step"]) == (2, 4)
    assert second["history"]["train"][:2] == first["history"]["train"]
    # continued, not restarted: AdamW counted 4 updates of every weight, not 2
    adam_steps = {float(v) for k, v in load_file(ckpt / "trainer_state.safetensors").items() if k.endswith(".step")}
    assert adam_steps == {4.0}
    assert "extending the run" in capsys.readouterr().out
    lrs = [h["lr"] for h in second["history"]["train"]]
    assert all(b <= a for a, b in zip(lrs[1:], lrs[2:]))  # after warmup the rate never rises

    cli.main(["finetune", "--checkpoint", str(ckpt), "--labels", "16", "--epochs", "1", "--batch-size", "8",
              "--out", str(tmp_path / "clf")])
    capsys.readouterr()
    cli.main(["evaluate", "--checkpoint", str(tmp_path / "clf"), "--device", "cpu"])
    assert_evaluate_agrees_with_predict(json.loads(capsys.readouterr().out), tmp_path / "clf")


def test_a_short_run_extends_with_the_settings_it_was_started_with(tmp_path, capsys):
    """``--max-steps 20`` then ``--max-steps 40``: warmup, rate and seed come from the checkpoint when not given."""
    if data.mirror_dir() is None:
        pytest.skip("COURSE_DATA_DIR is not set")
    ckpt = tmp_path / "gpt"
    base = ["pretrain", "--arch", "gpt", "--out", str(ckpt), "--corpus", "wiki", "--vocab-size", "400",
            "--block-size", "16", "--batch-size", "4"]
    cli.main(base + ["--max-steps", "20", "--lr", "2e-3", "--log-every", "5", "--grad-accum", "2"])
    cli.main(base + ["--max-steps", "40"])  # the default warmup of 40 steps (4) differs from the run's (2)
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["step"] == 40 and state["config"]["warmup_steps"] == 2 and state["config"]["lr"] == 2e-3
    assert state["config"]["grad_accum"] == 2 and state["config"]["log_every"] == 5
    cli.main(base + ["--max-steps", "40"])  # finished: left as it is
    assert json.loads((ckpt / "trainer_state.json").read_text())["history"] == state["history"]
    assert "nothing to train" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        cli.main(base + ["--max-steps", "60", "--lr", "1e-3"])  # a setting given that differs: refused, named
    assert exit_.value.code == 1 and "lr 0.002 (asked: 0.001)" in capsys.readouterr().err


def assert_evaluate_agrees_with_predict(result: dict, checkpoint) -> None:
    """``evaluate``'s accuracy equals one computed without its encoding, collator or accuracy function."""
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    finetune.match_tokenizer(model, tokenizer)
    dev = data.load("sst2")["dev"]
    correct = sum(p == y for p, y in zip(finetune.predict(model, tokenizer, dev.texts), dev.labels))
    assert (result["split"], result["device"], result["examples"]) == ("dev", "cpu", len(dev))
    assert result["accuracy"] == correct / len(dev)
    assert math.isfinite(result["loss"]) and result["loss"] > 0


def test_checkpoints_trains_the_course_checkpoint_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(pretraining.CORPORA, "toy", pretraining.Corpus(
        lambda: [f"the film is good and the actors are great {i} ." for i in range(40)]))
    monkeypatch.setitem(pretraining.RECIPES, ("gpt", "cpu"), dict(preset="tiny", max_steps=2, corpus="toy",
                        vocab_size=300, block_size=16, batch_size=4, progress=False))
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(runtime.PROFILE_ENV, "cpu")
    state = pretraining.checkpoint_dir("gpt") / "trainer_state.json"
    cli.main(["checkpoints", "--arch", "gpt"])
    trained = state.stat().st_mtime_ns
    cli.main(["checkpoints", "--arch", "gpt"])
    assert state.stat().st_mtime_ns == trained  # the second call finds the checkpoint, it does not train again
    first, second = capsys.readouterr().out.splitlines()
    assert first == second and first.startswith(f"gpt: {state.parent} (2 steps, 128 tokens")
