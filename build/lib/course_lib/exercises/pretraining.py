"""Checks for the exercises of notebooks 05 (GPT) and 06 (BERT): top-p, unigram perplexity, masked-token
accuracy, whole-word masking (and BERT's token-level masking)."""
import math
from collections import Counter

import torch

from . import CheckFailed, expect


def check_top_p(fn) -> None:
    """``fn(logits, p)`` -> logits with every token outside the nucleus set to -inf."""
    logits = torch.log(torch.tensor([[0.05, 0.5, 0.15, 0.3]]))
    out = fn(logits.clone(), 0.7)
    expect(isinstance(out, torch.Tensor) and out.shape == logits.shape,
           f"return a tensor shaped like the logits {tuple(logits.shape)}, got {getattr(out, 'shape', type(out))}")
    kept = torch.isfinite(out)[0].tolist()
    expect(kept[1], "the most probable token must always stay in the nucleus")
    expect(kept != [False, True, False, False],
           "with p=0.7 the best token (0.5) alone is not enough: keep adding tokens until the sum reaches p")
    expect(not kept[2] and not kept[0], "0.5 + 0.3 already reaches p=0.7: tokens with 0.15 and 0.05 must be removed "
                                        "(did you sort the probabilities in descending order?)")
    expect(torch.equal(out[0, [1, 3]], logits[0, [1, 3]]), "kept tokens must keep their original logits")
    expect(torch.isfinite(fn(logits.clone(), 0.5)).sum().item() == 1,
           "with p=0.5 exactly one token (probability 0.5) reaches p: keep only it")
    expect(torch.isfinite(fn(logits.clone(), 1.0)).all(), "with p=1.0 every token must be kept")
    print("top-p keeps the smallest set of most probable tokens whose probability reaches p.")


def check_unigram_perplexity(fn) -> None:
    """``fn(train_ids, eval_ids, vocab_size)`` -> perplexity of add-one unigram frequencies."""
    train, evaluate, vocab = [0, 0, 1, 2], [0, 1], 4
    counts = Counter(train)
    probs = [(counts[t] + 1) / (len(train) + vocab) for t in range(vocab)]
    expected = math.exp(-sum(math.log(probs[t]) for t in evaluate) / len(evaluate))
    got = fn(train, evaluate, vocab)
    expect(isinstance(got, (int, float)), f"return a number, got {type(got).__name__}")
    expect(not math.isclose(got, vocab), f"{got:.3f} is the uniform model's perplexity: use the training counts")
    no_smoothing = math.exp(-(math.log(2 / 4) + math.log(1 / 4)) / 2)
    expect(not math.isclose(got, no_smoothing, rel_tol=1e-6),
           "add one to every count (Laplace smoothing): a token unseen in training must not get probability 0")
    expect(got >= 1, f"a perplexity is at least 1, got {got:.3f}: exponentiate the mean *negative* log-probability")
    expect(math.isclose(got, expected, rel_tol=1e-6),
           f"expected {expected:.4f} for train {train}, eval {evaluate}, vocab {vocab}; got {got:.4f}. "
           "p(t) = (count(t) + 1) / (N + V), perplexity = exp(mean over eval tokens of -log p(t))")
    print("unigram perplexity: the number to beat for any language model that uses context.")


def check_masked_accuracy(fn) -> None:
    """``fn(logits, labels)`` -> share of labelled positions whose argmax equals the label."""
    logits = torch.zeros(1, 4, 3)
    logits[0, torch.arange(4), torch.tensor([0, 1, 2, 2])] = 1.0
    labels = torch.tensor([[0, -100, 1, 2]])
    got = fn(logits, labels)
    expect(isinstance(got, (float, int)) or (isinstance(got, torch.Tensor) and got.numel() == 1),
           f"return one number, got {type(got).__name__}")
    got = float(got)
    expect(not math.isclose(got, 0.5, rel_tol=1e-6),
           "0.5 is the accuracy over all 4 positions: skip positions labelled -100")
    expect(math.isclose(got, 2 / 3, rel_tol=1e-6),
           f"expected 2/3 (positions 0 and 3 right, 2 wrong, 1 ignored), got {got:.3f}")
    print("masked-token accuracy counts only the positions the model had to fill in.")


def _word_starts(tokens: list, special: torch.Tensor) -> torch.Tensor:
    """True where a new word begins: every token that is not a '##' continuation piece (specials included)."""
    return torch.tensor([[not t.startswith("##") for t in row] for row in tokens]) | special


def check_whole_word_masking(fn, input_ids: torch.Tensor, tokenizer, rate: float = 0.15) -> None:
    """``fn(input_ids, tokenizer, rate)`` -> (inputs, labels): whole words chosen, then 80/10/10 per token.

    A word is a token that does not start with '##' plus the '##' pieces that follow it. A word's pieces are
    chosen together or not at all (pieces cut off from their word at the start of a block, right after
    [CLS], may go either way, as long as they go together); about ``rate`` of the ordinary tokens end up
    chosen; labels are the original ids there and -100 everywhere else.
    """
    original = input_ids.clone()
    torch.manual_seed(0)
    out = fn(input_ids, tokenizer, rate)
    expect(isinstance(out, tuple) and len(out) == 2, "return a pair (inputs, labels)")
    inputs, labels = out
    expect(torch.equal(input_ids, original), "the input tensor was changed in place; work on a copy (input_ids.clone())")
    expect(isinstance(inputs, torch.Tensor) and isinstance(labels, torch.Tensor)
           and inputs.shape == original.shape and labels.shape == original.shape,
           f"inputs and labels must be tensors shaped like input_ids {tuple(original.shape)}")
    chosen = labels != -100
    expect(chosen.float().mean() < 0.5,
           f"{100 * chosen.float().mean():.0f}% of the labels are not -100: labels must be -100 (IGNORE) at every "
           "position that was not chosen, so the loss skips it")
    expect(chosen.any(), "no position was chosen: labels are -100 everywhere")
    special = torch.isin(original, torch.tensor(tokenizer.all_special_ids))
    expect(not chosen[special].any(), "special tokens ([CLS], [SEP], [PAD]) were chosen; they are never masked")
    expect(torch.equal(labels[chosen], original[chosen]), "at chosen positions the label is the ORIGINAL token id")
    expect(torch.equal(inputs[~chosen], original[~chosen]), "positions that were not chosen must stay unchanged")
    tokens = [tokenizer.convert_ids_to_tokens(row) for row in original.tolist()]
    starts = _word_starts(tokens, special)
    for r in range(original.shape[0]):
        for t in range(1, original.shape[1]):
            if starts[r, t] or special[r, t - 1] or chosen[r, t] == chosen[r, t - 1]:
                continue
            word_start = max(i for i in range(t) if starts[r, i])
            word = " ".join(tokens[r][word_start:t + 1])
            if chosen[r, t]:
                raise CheckFailed(f"'{tokens[r][t]}' was chosen without the piece before it ('{word}'): a '##' piece "
                                  "is never masked alone; choose whole words, then every piece of a chosen word")
            raise CheckFailed(f"'{tokens[r][t - 1]}' was chosen but not the '##' piece after it ('{word}'): "
                              "a chosen word is masked with all of its pieces")
    share = chosen.sum().item() / (~special).sum().item()
    expect(abs(share - rate) < 0.025,
           f"{100 * share:.1f}% of ordinary tokens were chosen; it should be about {100 * rate:.0f}%. Choose each "
           "*word* with probability rate (choosing tokens and then widening each to its whole word masks more)"
           if share > rate else
           f"{100 * share:.1f}% of ordinary tokens were chosen; it should be about {100 * rate:.0f}%")
    masked = (inputs[chosen] == tokenizer.mask_token_id).float().mean().item()
    kept = (inputs[chosen] == original[chosen]).float().mean().item()
    expect(abs(masked - 0.8) < 0.04, f"{100 * masked:.1f}% of chosen tokens became [MASK]; it should be 80%")
    expect(abs(kept - 0.1) < 0.04, f"{100 * kept:.1f}% of chosen tokens were left unchanged; it should be 10%")
    expect(abs(1 - masked - kept - 0.1) < 0.04, f"{100 * (1 - masked - kept):.1f}% of chosen tokens became another "
                                                 "token; about 10% should become a random token")
    words = int((chosen & starts & ~special).sum())
    print(f"{100 * share:.1f}% of tokens chosen, in {words:,} whole words; "
          f"{100 * masked:.0f}% [MASK], {100 * (1 - masked - kept):.0f}% random, {100 * kept:.0f}% kept.")
