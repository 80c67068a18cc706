"""Two processes under torchrun train the same steps as one process with the same global batch."""
import json
import os
import subprocess
import sys

import pytest
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
