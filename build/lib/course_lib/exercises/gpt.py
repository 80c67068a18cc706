"""Checks for notebook 08 (GPT fine-tuning and prompting)."""
import math

import torch
import torch.nn.functional as F

from .. import gpt_finetune as gf, prompting
from ..trainer import IGNORE
from . import expect, expect_number


def check_transform(gpt1_input, tokenizer) -> None:
    """``gpt1_input(tokenizer, text, max_length)`` -> token ids ``<start> text <extract>``, at most ``max_length``."""
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in (gf.START, gf.EXTRACT)}
    text = "a gorgeous , witty , seductive movie ."
    body = tokenizer(text, add_special_tokens=False)["input_ids"]
    got = gpt1_input(tokenizer, text, 64)
    expect(isinstance(got, list) and all(isinstance(i, int) for i in got),
           f"return a list of token ids (ints), not {type(got).__name__}")
    expect(got[:1] == [ids[gf.START]], f"the first id must be the start token {gf.START} (id {ids[gf.START]}), "
                                       f"not {tokenizer.convert_ids_to_tokens(got[:1])}")
    expect(got[-1:] == [ids[gf.EXTRACT]], f"the last id must be the extract token {gf.EXTRACT} (id {ids[gf.EXTRACT]}): "
                                          "the classifier reads the final hidden state there")
    expect(got[1:-1] == body, "between the two special tokens must be the sentence's own ids, exactly as "
                              "tokenizer(text, add_special_tokens=False) gives them")
    long = " ".join(["a long , long and winding film"] * 20)
    cut = gpt1_input(tokenizer, long, 16)
    expect(len(cut) <= 16, f"a long sentence gave {len(cut)} ids for max_length 16: cut the text so the whole fits")
    expect(cut[-1:] == [ids[gf.EXTRACT]], "after cutting a long sentence the extract token is gone: cut the text, "
                                          "keep both special tokens")
    expect(cut == gf.transform(tokenizer, long, max_length=16),
           "the long sentence should keep its first tokens (cut at its end) and fill all 16 places")
    print(f"Correct: {len(got)} ids, {gf.START} + {len(body)} text tokens + {gf.EXTRACT}; long sentences are cut to fit.")


def _batch():
    """Two rows of GPT-1 inputs with padding (ids 3-9 are text, 10/11 start/extract, 0 padding)."""
    input_ids = torch.tensor([[10, 3, 4, 5, 6, 11, 0, 0], [10, 7, 8, 9, 4, 5, 3, 11]])
    attention_mask = (torch.arange(8) < torch.tensor([6, 8])[:, None]).long()
    return input_ids, attention_mask, [10, 11]


def check_aux_lm_loss(aux_lm_loss, model=None, batch=None) -> None:
    """``aux_lm_loss(lm_logits, input_ids, attention_mask, special_ids)`` -> mean next-token cross-entropy.

    Targets: every real text token, predicted from the position before it; not padding, not GPT-1's tokens.
    """
    torch.manual_seed(0)
    input_ids, mask, special = _batch()
    logits = torch.randn(2, 8, 12)
    got = aux_lm_loss(logits, input_ids, mask, special)
    expect(isinstance(got, torch.Tensor) and got.dim() == 0, "return the loss as a scalar tensor (a mean)")
    targets = gf.lm_targets(input_ids, mask, special)
    want = gf.causal_lm_loss(logits, targets)
    unshifted = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
    with_padding = gf.causal_lm_loss(logits, input_ids.masked_fill(torch.isin(input_ids, torch.tensor(special)), IGNORE))
    with_special = gf.causal_lm_loss(logits, input_ids.masked_fill(mask == 0, IGNORE))
    summed = F.cross_entropy(logits[:, :-1].flatten(0, 1), targets[:, 1:].flatten(), ignore_index=IGNORE, reduction="sum")
    expect(not torch.allclose(got, unshifted), "position t must predict the token at t+1: compare logits[:, :-1] "
                                               "with the targets [:, 1:] (the shift a causal LM needs)")
    expect(not torch.allclose(got, with_padding), "padding positions are counted as targets: set them to -100 "
                                                  "where attention_mask is 0")
    expect(not torch.allclose(got, with_special), "the start/extract tokens are counted as targets: they are not "
                                                  "language, set them to -100 too")
    expect(not torch.allclose(got, summed), "that is the sum over targets; return the mean per predicted token")
    expect(torch.allclose(got, want, atol=1e-5), f"got {got.item():.4f}, expected {want.item():.4f}: the mean "
                                                 "cross-entropy of the next real text token")
    if model is not None:
        model.eval()
        with torch.no_grad():
            out = model(**batch)
            hidden = model.transformer(batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            mine = out.task_loss + model.config.lm_weight * aux_lm_loss(
                hidden @ model.transformer.wte.weight.T, batch["input_ids"], batch["attention_mask"],
                model.config.gpt1_token_ids)
        expect(torch.allclose(mine, out.loss, atol=1e-4),
               f"on the real model L_task + λ·(your L_LM) = {mine.item():.4f}, but the model's loss is {out.loss.item():.4f}")
        print(f"Correct: on a real batch L = {out.task_loss.item():.3f} + {model.config.lm_weight} x "
              f"{out.lm_loss.item():.3f} = {out.loss.item():.3f}, the model's own loss.")
    else:
        print(f"Correct: {int((targets[:, 1:] != IGNORE).sum())} targets, mean loss {want.item():.3f}.")


def check_label_logprob(label_logprob, model, tokenizer) -> None:
    """``label_logprob(model, tokenizer, prompt, word)`` -> log p(word | prompt), summed over the word's tokens."""
    prompt = "a gorgeous , witty film . it was"
    for word in (" great", " negative"):
        pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
        got = label_logprob(model, tokenizer, prompt, word)
        got = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
        expect_number(got, "a log-probability")
        want = prompting.label_logprobs(model, tokenizer, [prompt], [word])[0, 0].item()
        ids = tokenizer(prompt + word, add_special_tokens=False)["input_ids"][-prompting.window(model):]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0].float()
        n = len(pieces)
        at = torch.arange(len(ids) - n, len(ids))
        first = logits[at[0] - 1].log_softmax(-1)[pieces[0]].item()
        no_shift = logits[at].log_softmax(-1)[torch.arange(n), torch.tensor(pieces)].sum().item()
        raw = logits[at - 1][torch.arange(n), torch.tensor(pieces)].sum().item()
        expect(got <= 0, f"{got:.3f} is positive: a log-probability is at most 0 (take log_softmax of the logits)")
        expect(not math.isclose(got, math.exp(want), abs_tol=1e-4), "that is a probability; return its logarithm")
        expect(not math.isclose(got, raw, abs_tol=1e-4), "those are raw logits: normalise them with log_softmax first")
        expect(n == 1 or not math.isclose(got, first, abs_tol=1e-4),
               f"{word!r} is {n} tokens {tokenizer.convert_ids_to_tokens(pieces)}: add the log-probabilities of all of "
               "them, each given the prompt and the word's tokens before it")
        expect(not math.isclose(got, no_shift, abs_tol=1e-4), "the logits at position t predict token t+1: read the "
                                                             "word's tokens one position earlier")
        expect(math.isclose(got, want, abs_tol=1e-3), f"for {word!r} you got {got:.3f}, expected {want:.3f}")
    print(f"Correct: multi-token words sum their tokens' log-probabilities ({word!r} is {n} tokens).")
