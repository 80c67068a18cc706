"""Checks for notebook 10 (the cost of scale)."""
import math

import numpy as np

from .. import published, scaling
from . import expect, expect_number


def check_power_law_fit(fit) -> None:
    """``fit(n, loss)`` -> (exponent, r2) of loss = a·n^-exponent, fitted in log-log space."""
    n = np.array([2e4, 5e4, 1e5, 4e5, 9e5])
    exact = 9.0 * n ** -0.07
    answer = fit(n, exact)
    expect(isinstance(answer, tuple) and len(answer) == 2, "return a pair: (exponent, r2)")
    exponent, r2 = answer
    expect_number(exponent, "the exponent")
    expect(not math.isclose(exponent, -0.07, rel_tol=1e-3),
           "that is the slope of the line; the law is written n^-exponent, so the exponent is minus the slope")
    expect(math.isclose(exponent, 0.07, rel_tol=1e-3),
           f"on an exact power law with exponent 0.07 you got {exponent:.4f}: fit a straight line to "
           "log(n) and log(loss), not to n and loss")
    noisy = exact * np.exp(np.array([0.02, -0.03, 0.01, 0.03, -0.02]))
    exponent, r2 = fit(n, noisy)
    want = scaling.fit_power_law(n, noisy)
    expect_number(r2, "R²")
    expect(math.isclose(exponent, want.exponent, rel_tol=1e-6), "on noisy points the exponent is off: use "
           "ordinary least squares on the logs (np.polyfit(np.log(n), np.log(loss), 1))")
    expect(math.isclose(r2, want.r2, rel_tol=1e-6),
           f"R² is {r2:.4f}, expected {want.r2:.4f}: 1 - (sum of squared residuals) / (sum of squared deviations "
           "from the mean), both measured on log(loss), the space the line was fitted in")
    print(f"Correct: exponent {want.exponent:.3f}, R² {want.r2:.3f} on the noisy points.")


def check_run_co2(co2_kg) -> None:
    """``co2_kg(watts, seconds, intensity)`` -> kg CO2e of a run drawing ``watts`` for ``seconds``."""
    watts, seconds, intensity = 20.0, 1800.0, 0.4
    answer = co2_kg(watts, seconds, intensity)
    expect_number(answer, "kilograms of CO2e")
    joules = watts * seconds
    want = joules / 3.6e6 * intensity
    expect(not math.isclose(answer, joules * intensity),
           "watts x seconds is joules; the intensity is per kWh, and a kWh is 3.6 million joules")
    expect(not math.isclose(answer, joules / 3600 * intensity),
           "1,000 times too much: watts x hours is watt-hours, so divide by another 1,000 for kWh (and the "
           "intensity is in kg per kWh, so the answer is in kg, not grams)")
    expect(math.isclose(answer, want, rel_tol=1e-9), f"expected {want:.4g} kg for 20 W over half an hour at "
                                                     f"0.4 kg/kWh, got {answer:.4g}")
    print(f"Correct: 20 W for 30 minutes is {joules / 3.6e6:.3f} kWh, {1000 * want:.0f} g CO2e at 0.4 kg/kWh.")


def check_break_even(break_even) -> None:
    """``break_even(pretrain, finetune, scratch)`` -> tasks one pretraining must serve to pay for itself."""
    pretrain, finetune, scratch = 1e15, 2e11, 7e11
    answer = break_even(pretrain, finetune, scratch)
    expect_number(answer, "a number of tasks")
    want = published.break_even_tasks(pretrain, finetune, scratch)
    expect(not math.isclose(answer, pretrain / finetune),
           "pretrain / fine-tune counts how many fine-tunings cost as much as the pretraining; compare with the "
           "alternative instead: each task trained from scratch")
    expect(not math.isclose(answer, pretrain / scratch),
           "with a pretrained model each task still costs its fine-tuning: the saving per task is scratch - fine-tune")
    expect(math.isclose(answer, want, rel_tol=1e-9), f"expected {want:,.0f} tasks, got {answer:,.0f}")
    expect(break_even(pretrain, scratch, scratch) is None,
           "when fine-tuning costs as much as scratch, no number of tasks pays the pretraining back: return None")
    print(f"Correct: {want:,.0f} tasks; after that, every task adds {scratch - finetune:.1e} FLOPs of saving.")
