"""Self-supervised objectives (자기지도학습): the labels are made from the text itself.

Three ways to turn raw text into (input, label) pairs, each a *collator* that batches tokenized
examples for the course trainer — the same ones the course's GPT and BERT are pretrained with:

- causal LM (GPT): predict every next token.             ``causal_lm_collator``
- masked LM (BERT): predict 15% hidden tokens, 80/10/10. ``masked_lm_collator`` (``mask_tokens``)
- denoising (T5): predict the spans cut out of the input. ``SpanCorruptionCollator``

``show`` lays a batch out position by position, so a learner sees exactly what the model gets.
"""
import math
from collections import Counter

import torch

from .costs import IGNORE

SENTINELS = [f"<extra_id_{i}>" for i in range(16)]


def stack(examples: list, pad_id: int) -> dict:
    """Token-id lists as one tensor. Rows of unequal length are padded, and an attention mask says
    which positions are real; packed pretraining blocks all have one length and need neither."""
    rows = [list(e["input_ids"]) for e in examples]
    width = max(len(r) for r in rows)
    if all(len(r) == width for r in rows):
        return {"input_ids": torch.tensor(rows)}
    return {"input_ids": torch.tensor([r + [pad_id] * (width - len(r)) for r in rows]),
            "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])}


# --- causal LM (GPT) -----------------------------------------------------------------------------

def causal_lm_collator(tokenizer):
    """Labels are the inputs themselves (padding -> IGNORE); the model shifts them by one."""
    def collate(examples: list) -> dict:
        batch = stack(examples, tokenizer.pad_token_id)
        labels = batch["input_ids"].clone()
        if "attention_mask" in batch:
            labels[batch["attention_mask"] == 0] = IGNORE
        return {**batch, "labels": labels}
    return collate


# --- masked LM (BERT) ----------------------------------------------------------------------------

def mask_tokens(input_ids: torch.Tensor, tokenizer, rate: float = 0.15, mask_prob: float = 0.8,
                random_prob: float = 0.1) -> tuple:
    """BERT's corruption: choose ``rate`` of the ordinary tokens as targets, then replace
    80% of them by [MASK], 10% by a random token and keep 10% unchanged.

    The random and unchanged 10%s keep the model from learning "only [MASK] positions matter",
    since [MASK] never appears when the model is later fine-tuned. Returns (corrupted inputs,
    labels); labels are IGNORE wherever there is nothing to predict. Called afresh for every batch,
    so a text gets a new mask each time it is seen (dynamic masking, RoBERTa) instead of the
    original BERT's ten masks per sequence, fixed in preprocessing. The draws come from torch's
    global generator, which the course trainer seeds for every step.
    """
    special = torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids))
    chosen = (torch.rand(input_ids.shape) < rate) & ~special
    labels = input_ids.masked_fill(~chosen, IGNORE)
    roll = torch.rand(input_ids.shape)
    inputs = input_ids.masked_fill(chosen & (roll < mask_prob), tokenizer.mask_token_id)
    random_token = chosen & (roll >= mask_prob) & (roll < mask_prob + random_prob)
    inputs[random_token] = torch.randint(len(tokenizer), input_ids.shape)[random_token]
    return inputs, labels


def masked_lm_collator(tokenizer, rate: float = 0.15, positions: bool = False, **split):
    """Stack (and pad) the examples, then mask them; ``split``: ``mask_prob``/``random_prob`` of ``mask_tokens``.

    ``positions=True`` also hands over where the targets are, as ``masked_positions`` (indices into the
    flattened batch): the collator finds them on the CPU for free, where a model on a GPU that picks
    its labelled positions with a boolean mask must wait for the GPU to count them
    (``models.ModernBertForMaskedLMAtPositions``).
    """
    def collate(examples: list) -> dict:
        batch = stack(examples, tokenizer.pad_token_id)
        inputs, labels = mask_tokens(batch["input_ids"], tokenizer, rate, **split)
        batch = {**batch, "input_ids": inputs, "labels": labels}
        if positions:
            batch["masked_positions"] = (labels.flatten() != IGNORE).nonzero().squeeze(1)
        return batch
    return collate


def add_sentinels(tokenizer, n: int = len(SENTINELS)):
    """Give a tokenizer T5's span placeholders ``<extra_id_0>``, ``<extra_id_1>``… as special tokens."""
    tokenizer.add_special_tokens({"extra_special_tokens": SENTINELS[:n]})
    return tokenizer.convert_tokens_to_ids(SENTINELS[:n])


def corrupt_spans(ids: list, sentinel_ids: list, generator: torch.Generator | None = None, density: float = 0.15,
                  mean_span: float = 3.0) -> tuple:
    """T5's span corruption on one sequence: returns (corrupted input, target).

    About ``density`` of the tokens are removed in spans of ``mean_span`` on average; each span is
    replaced by one sentinel in the input, and the target lists each sentinel followed by the
    tokens it hides. The input shrinks and the target is short: cheap to train on. The span starts
    are drawn from ``generator`` (default: torch's global one, which the course trainer seeds per step).
    """
    n_noise = max(1, round(len(ids) * density))
    n_spans = max(1, min(len(sentinel_ids), round(n_noise / mean_span)))
    starts = sorted(torch.randperm(max(1, len(ids) - n_noise), generator=generator)[:n_spans].tolist())
    corrupted, target, cursor = [], [], 0
    span_len = max(1, n_noise // n_spans)
    for k, start in enumerate(starts):
        start = max(start, cursor)
        end = min(start + span_len, len(ids))
        if start >= end:
            break
        corrupted += ids[cursor:start] + [sentinel_ids[k]]
        target += [sentinel_ids[k]] + ids[start:end]
        cursor = end
    return corrupted + ids[cursor:], target


class SpanCorruptionCollator:
    """T5's denoising: the model reads the corrupted text and writes the missing spans.

    With an encoder-decoder (``encoder_decoder=True``, T5's own set-up) the corrupted text is the
    encoder's input and the target the decoder's labels. With one causal stack it becomes a decoder-only
    LM scored on the target alone: ``[corrupted input] [SEP] [target]``, labels -100 on the input part.
    (Not a *prefix LM* in T5's sense, where the input part would also see itself both ways: here the
    causal mask stays, and the input is read left to right.)
    """

    def __init__(self, tokenizer, sentinel_ids: list, separator_id: int | None = None,
                 encoder_decoder: bool = False, **corrupt_args):
        if separator_id is None and not encoder_decoder:
            raise ValueError("a decoder-only model needs separator_id between the input and the target")
        self.tokenizer, self.sentinel_ids, self.separator_id = tokenizer, sentinel_ids, separator_id
        self.encoder_decoder = encoder_decoder
        self.corrupt_args = corrupt_args

    def __call__(self, examples: list) -> dict:
        pairs = [corrupt_spans(example["input_ids"], self.sentinel_ids, **self.corrupt_args) for example in examples]
        if self.encoder_decoder:  # the target ends with an end token, so that generation learns to stop
            end = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else self.tokenizer.sep_token_id
            inputs, labels = [c for c, _ in pairs], [t + [end] for _, t in pairs]
        else:
            inputs = [c + [self.separator_id] + t for c, t in pairs]
            labels = [[IGNORE] * (len(c) + 1) + t for c, t in pairs]
        return {**stack([{"input_ids": ids} for ids in inputs], self.tokenizer.pad_token_id),
                "labels": stack([{"input_ids": ids} for ids in labels], IGNORE)["input_ids"]}


# --- looking inside a batch ----------------------------------------------------------------------

def show(tokenizer, batch: dict, row: int = 0, max_positions: int = 24, shift: bool = False) -> str:
    """A table of one batch row: position, the token the model reads, the token it must predict there.

    ``shift=True`` is for causal LMs: their labels equal their inputs and the model compares the
    output at position t with the label at t + 1, so the table shows that next token.
    """
    ids = batch["input_ids"][row].tolist()[:max_positions]
    labels = batch["labels"][row].tolist()[1:max_positions + 1] + [IGNORE] if shift else \
        batch["labels"][row].tolist()[:max_positions]
    lines = [f"{'pos':>3}  {'input':<16}{'predicts' if shift else 'label'}"]
    for pos, (i, y) in enumerate(zip(ids, labels)):
        target = "·" if y == IGNORE else tokenizer.convert_ids_to_tokens(y)
        lines.append(f"{pos:>3}  {tokenizer.convert_ids_to_tokens(i):<16}{target}")
    return "\n".join(lines)


def masking_breakdown(originals: torch.Tensor, batch: dict, tokenizer) -> dict:
    """What MLM did: share of ordinary tokens chosen; of the chosen, share [MASK] / random / kept.

    ``originals`` are the padded input ids before masking (same shape as the batch). Special
    tokens ([CLS], [SEP], [PAD]) are never chosen, so they are left out of the first share.
    """
    chosen = batch["labels"] != IGNORE
    ordinary = ~torch.isin(originals, torch.tensor(tokenizer.all_special_ids))
    inputs = batch["input_ids"][chosen]
    n = int(chosen.sum())
    is_mask = inputs == tokenizer.mask_token_id
    kept = inputs == originals[chosen]
    return {"chosen": n / int(ordinary.sum()), "mask": int(is_mask.sum()) / n,
            "random": int((~is_mask & ~kept).sum()) / n, "kept": int(kept.sum()) / n}


def targets_per_token(batch: dict) -> float:
    """Fraction of real (non-padding) positions that carry a label: the objective's learning signal."""
    real = batch["attention_mask"].bool()
    return int((batch["labels"] != IGNORE)[real].sum()) / int(real.sum())


# --- baselines a trained model must beat ------------------------------------------------------------

def uniform_loss(vocab_size: int) -> float:
    """Cross-entropy of guessing uniformly over the vocabulary: ln V nats. A random model sits near it."""
    return math.log(vocab_size)


def unigram_loss(train_ids: list, eval_ids: list, vocab_size: int) -> float:
    """Cross-entropy on ``eval_ids`` of a model that ignores context and predicts token frequencies.

    Add-one smoothing keeps unseen tokens at a finite cost. Beating this number is the first sign
    that a language model uses context at all.
    """
    counts = Counter(train_ids)
    total = len(train_ids) + vocab_size
    return -sum(math.log((counts[t] + 1) / total) for t in eval_ids) / len(eval_ids)
