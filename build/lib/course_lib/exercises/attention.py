"""Checks for notebook 03's exercises: masks, attention, positional encodings."""
import math

import torch

from . import expect
from .. import attention as A


def check_causal_mask(causal_mask) -> None:
    """``causal_mask(T)`` must be a (T, T) boolean tensor, True where query i may see key j <= i."""
    for length in (1, 4, 7):
        got = causal_mask(length)
        expect(isinstance(got, torch.Tensor), f"return a torch.Tensor, not {type(got).__name__}")
        expect(got.shape == (length, length), f"for T={length} the mask must have shape ({length}, {length}), "
                                              f"got {tuple(got.shape)}")
        expect(got.dtype == torch.bool, f"the mask must be boolean (True = may attend), got dtype {got.dtype}")
        want = A.causal_mask(length)
        expect(not torch.any(got & ~want), f"T={length}: some query may see a *later* key (a True above the "
                                           "diagonal) - that leaks the future the model must predict")
        expect(bool(got.diagonal().all()), f"T={length}: a position must be allowed to see itself (the diagonal "
                                           "must be True), otherwise the first row has nothing to attend to")
        expect(torch.equal(got, want), f"T={length}: some earlier keys are blocked; every j <= i should be True")


def check_attention(attention) -> None:
    """``attention(q, k, v, mask)`` must return softmax(q k^T / sqrt(d) with mask) v."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    mask = A.causal_mask(5)
    got = attention(q, k, v, None)
    got = got[0] if isinstance(got, tuple) else got
    expect(got.shape == (2, 3, 5, 8), f"output shape should equal v's (2, 3, 5, 8), got {tuple(got.shape)}")
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    unscaled = torch.softmax(q @ k.transpose(-2, -1), -1) @ v
    wrong_dim = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), -2) @ v
    expect(not torch.allclose(got, unscaled, atol=1e-5), "the scores are not divided by sqrt(d_k) = sqrt(8)")
    expect(not torch.allclose(got, wrong_dim, atol=1e-5), "softmax runs over the queries (dim=-2); it must "
                                                          "normalise over the keys (dim=-1)")
    expect(torch.allclose(got, want, atol=1e-5), "without a mask the output differs from "
                                                 "torch.nn.functional.scaled_dot_product_attention")
    got = attention(q, k, v, mask)
    got = got[0] if isinstance(got, tuple) else got
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    expect(torch.allclose(got, want, atol=1e-5), "with the causal mask the output is wrong: set the scores of "
                                                 "masked keys (mask False) to -inf *before* the softmax")


def check_positions(positions) -> None:
    """``positions(T, d)`` must equal the sinusoidal encodings of Vaswani et al."""
    got, want = positions(10, 16), A.sinusoidal_positions(10, 16)
    expect(tuple(got.shape) == (10, 16), f"shape should be (T, d) = (10, 16), got {tuple(got.shape)}")
    expect(not torch.allclose(got[:, 0::2], want[:, 1::2], atol=1e-5),
           "sin and cos are swapped: even dimensions 2i get sin, odd dimensions 2i+1 get cos")
    expect(torch.allclose(got[0], want[0], atol=1e-5), "position 0 should be [0, 1, 0, 1, ...] (sin 0, cos 0)")
    expect(torch.allclose(got, want, atol=1e-4), "the frequencies are off: dimension pair i uses "
                                                 "1 / 10000^(2i/d), the same for its sin and its cos")
