"""Checks for notebook 04's exercises: causal-LM loss by hand, BERT's 80/10/10 masking."""
import torch
import torch.nn.functional as F

from . import expect

IGNORE = -100


def check_clm_loss(clm_loss) -> None:
    """``clm_loss(logits, labels)`` must shift by one and skip -100 labels, like GPT2LMHeadModel."""
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(2, 6, 11, generator=g), torch.randint(0, 11, (2, 6), generator=g)
    labels[1, 4:] = IGNORE
    got = clm_loss(logits, labels)
    expect(isinstance(got, torch.Tensor) and got.dim() == 0, "return one scalar tensor: the mean loss")
    want = F.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), ignore_index=IGNORE)
    unshifted = F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1), ignore_index=IGNORE)
    expect(not torch.isclose(got, unshifted, atol=1e-5), "no shift: position t must be scored against the "
                                                         "label at t+1 (logits[:, :-1] vs labels[:, 1:])")
    expect(torch.isclose(got, want, atol=1e-5), f"expected {want.item():.4f}, got {got.item():.4f}: check that "
                                                "-100 labels are ignored and the loss is a mean over targets")


def check_mask_tokens(mask_tokens) -> None:
    """``mask_tokens(ids, special, mask_id, vocab_size, generator)`` -> (inputs, labels), BERT-style."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (64, 128), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    original = ids.clone()
    inputs, labels = mask_tokens(ids, special, 4, 1000, torch.Generator().manual_seed(1))
    expect(torch.equal(ids, original), "the input tensor was changed in place; work on a copy (ids.clone())")
    expect(inputs.shape == ids.shape and labels.shape == ids.shape, "inputs and labels must have the ids' shape")
    chosen = labels != IGNORE
    expect(not chosen[special].any(), "special tokens ([CLS], [SEP]) were chosen; they must never be masked")
    expect(torch.equal(labels[chosen], original[chosen]), "a chosen position's label must be its *original* token")
    expect(torch.equal(inputs[~chosen], original[~chosen]), "positions that were not chosen must stay unchanged")
    rate = chosen.float().sum() / (~special).sum()
    expect(abs(rate - 0.15) < 0.02, f"{100 * rate:.1f}% of ordinary tokens were chosen; it should be about 15%")
    masked = (inputs[chosen] == 4).float().mean()
    kept = (inputs[chosen] == original[chosen]).float().mean()
    expect(abs(masked - 0.8) < 0.03, f"{100 * masked:.1f}% of chosen tokens became [MASK]; it should be 80%")
    expect(abs(kept - 0.1) < 0.03, f"{100 * kept:.1f}% of chosen tokens were left unchanged; it should be 10%")
    expect(abs(1 - masked - kept - 0.1) < 0.03, "about 10% of chosen tokens should become a random token")
