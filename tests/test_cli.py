"""The command line: every subcommand documents itself; pretrain resumes; finetune/evaluate use its output."""
import json
import subprocess
import sys

import pytest

from course_lib import cli, data, pretraining, runtime


def test_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "course_lib", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "{demo,pretrain,checkpoints,finetune,evaluate,homework}" in result.stdout


@pytest.mark.parametrize("command", ["demo", "pretrain", "checkpoints", "finetune", "evaluate", "homework"])
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
    cli.main(common + ["--max-steps", "4"])
    second = json.loads((ckpt / "trainer_state.json").read_text())
    assert (first["step"], second["step"]) == (2, 4)
    assert second["history"]["train"][:2] == first["history"]["train"]  # continued, not restarted

    cli.main(["finetune", "--checkpoint", str(ckpt), "--labels", "16", "--epochs", "1", "--batch-size", "8",
              "--out", str(tmp_path / "clf")])
    capsys.readouterr()
    cli.main(["evaluate", "--checkpoint", str(tmp_path / "clf")])
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == 872 and 0.0 <= result["accuracy"] <= 1.0


def test_finetune_names_a_bad_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match="neither 'minilm' nor a checkpoint directory"):
        cli.main(["finetune", "--checkpoint", str(tmp_path), "--labels", "16", "--out", str(tmp_path / "x")])


def test_checkpoints_trains_the_course_checkpoint_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(pretraining.CORPORA, "toy", lambda: ["the film is good and the actors are great ."] * 40)
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
