"""Checks for notebook 00's exercises: training compute as 6·N·D, and the CO2 of a run."""
import math

from . import expect, expect_number
from ..published import PUBLISHED


def _close(got, want) -> bool:
    return math.isclose(got, want, rel_tol=1e-6)


def check_training_flops(training_flops) -> None:
    """``training_flops(n_params, n_tokens)`` must return 6·N·D, the FLOPs of pretraining."""
    cases = [(110e6, 4.26e10), (175e9, 300e9), (22.7e6, 1e6)]  # BERT-base, GPT-3, a MiniLM fine-tuning
    for n_params, n_tokens in cases:
        got = training_flops(n_params, n_tokens)
        expect_number(got, "FLOPs")
        want = 6 * n_params * n_tokens
        label = f"N = {n_params:.3g} parameters, D = {n_tokens:.3g} tokens"
        expect(not _close(got, 2 * n_params * n_tokens),
               f"{label}: you returned 2·N·D, the forward pass only. Training also runs the backward pass, "
               "which costs about twice the forward: 2 + 4 = 6 FLOPs per parameter per token.")
        expect(not _close(got, 4 * n_params * n_tokens),
               f"{label}: you returned 4·N·D, the backward pass only; add the forward pass (2·N·D).")
        expect(not _close(got, 6 * n_params), f"{label}: you returned 6·N, the FLOPs of *one* token; "
                                              "multiply by the number of training tokens D.")
        expect(_close(got, want), f"{label}: expected 6·N·D = {want:.3e} FLOPs, got {got:.3e} "
                                  f"({got / want:.3g} times too {'large' if got > want else 'small'}).")
    gpt3 = next(m for m in PUBLISHED if m.name == "GPT-3")
    expect(_close(training_flops(gpt3.params, gpt3.tokens), gpt3.flops), "GPT-3 does not come out right")


def check_co2_grams(co2_grams) -> None:
    """``co2_grams(kwh, kg_per_kwh)`` must return grams of CO2e: energy x grid carbon intensity, in grams."""
    cases = [(2.5, 0.42), (0.0013, 0.475), (1287e3, 0.429)]
    for kwh, intensity in cases:
        got = co2_grams(kwh, intensity)
        expect_number(got, "grams of CO2e")
        want = kwh * intensity * 1000
        label = f"{kwh:g} kWh at {intensity:g} kg CO2e/kWh"
        expect(not _close(got, kwh * intensity),
               f"{label}: you returned {got:g}, which is in kilograms (kWh x kg/kWh = kg); the question asks for grams.")
        expect(not _close(got, kwh * intensity * 1e6),
               f"{label}: you returned {got:g}, a thousand times too much: 1 kg = 1,000 g, not 1,000,000.")
        expect(not _close(got, kwh / intensity * 1000),
               f"{label}: you divided by the carbon intensity; emissions grow with it, so multiply.")
        expect(_close(got, want), f"{label}: expected {want:g} g CO2e, got {got:g}.")
