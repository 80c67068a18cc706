"""Several processes under torchrun: the same steps as one process, their own random draws, exact resume."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

ARGS = ["pretrain", "--arch", "gpt", "--preset", "tiny", "--max-steps", "20", "--batch-size", "16",
        "--corpus", "wiki", "--vocab-size", "500", "--block-size", "32", "--warmup-steps", "2"]


def pretrain(out, processes: int):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)]
    command = (launcher if processes > 1 else [sys.executable]) + ["-m", "course_lib", *ARGS, "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads((out / "trainer_state.json").read_text())


@pytest.mark.skipif(sys.platform != "linux", reason="gloo's standalone rendezvous is tested on Linux")
def test_two_processes_follow_the_one_process_run(tmp_path):
    one, single = pretrain(tmp_path / "one", 1)
    two, double = pretrain(tmp_path / "two", 2)
    losses_one = [h["loss"] for h in single["history"]["train"]]
    losses_two = [h["loss"] for h in double["history"]["train"]]
    assert len(losses_one) == len(losses_two) == 20
    for step, (a, b) in enumerate(zip(losses_one, losses_two), start=1):
        assert b == pytest.approx(a, rel=0.01), f"step {step}: {a} vs {b}"
    assert losses_two[-1] < losses_two[0]
    # tokens count every process: both runs saw the same 20 x 16 x 32 tokens
    assert single["cost"]["tokens"] == double["cost"]["tokens"] == 20 * 16 * 32
    assert two.stdout.count('new run in') == two.stdout.count(' tokens, ') == 1  # only rank 0 reports
    AutoModelForCausalLM.from_pretrained(tmp_path / "two")


@pytest.fixture
def runs(tmp_path):
    """A folder for ddp_run.py's runs, with the tokenizer they share."""
    sys.path.insert(0, str(Path(__file__).parent))
    import ddp_run

    ddp_run.tokenizer(tmp_path / "tokenizer")
    return tmp_path


def torchrun(*args, processes: int = 2):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               str(Path(__file__).with_name("ddp_run.py")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.skipif(sys.platform != "linux", reason="gloo's standalone rendezvous is tested on Linux")
def test_processes_draw_their_own_masks_and_dropout(runs):
    """Identical masks on every process would make N processes see one process's lesson N times."""
    (runs / "masks").mkdir()
    result = torchrun("masks", runs / "masks")
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(runs / "masks" / f"rank{r}.pt") for r in (0, 1))
    assert not torch.equal(rank0["labels"] != -100, rank1["labels"] != -100)
    assert not torch.equal(rank0["dropout"], rank1["dropout"])


@pytest.mark.skipif(sys.platform != "linux", reason="gloo's standalone rendezvous is tested on Linux")
def test_a_two_process_run_killed_mid_way_resumes_exactly(runs):
    whole, broken = runs / "whole", runs / "broken"
    for out in (whole, broken):
        out.mkdir()
    assert torchrun("full", whole).returncode == 0
    crashed = torchrun("crash", broken)
    assert crashed.returncode != 0 and json.loads((broken / "ckpt" / "trainer_state.json").read_text())["step"] == 3
    resumed = torchrun("full", broken)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = (load_file(out / "ckpt" / "model.safetensors") for out in (whole, broken))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    state = load_file(broken / "ckpt" / "trainer_state.safetensors")
    assert "rng.torch" in state and "rng.1.torch" in state  # every process's random state is saved
