"""The trainer's FLOPs formula against PyTorch's own count, on every kind of model the course trains.

Runs the cases of tests/test_flops.py (one forward and backward pass each, eager attention so that
``FlopCounterMode`` sees every matmul) and prints formula, count and their ratio; the test asserts the
bounds, this prints the figures benchmarks/RESULTS.md records.

    python benchmarks/flops_check.py
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_flops import CASES, counted  # noqa: E402

from course_lib import costs, runtime  # noqa: E402

runtime.quiet_libraries()
print(f"{'model':<48}{'formula':>12}{'counted':>12}{'ratio':>8}")
for name, case in CASES.items():
    torch.manual_seed(0)
    model, batch, _ = case()
    formula, measured = costs.flops_profile(model).of(batch), counted(model, batch)
    print(f"{name:<48}{formula:>12.4g}{measured:>12.4g}{formula / measured:>8.3f}")
