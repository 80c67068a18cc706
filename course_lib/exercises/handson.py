"""Checks for notebook 12 (fine-tune it yourself): AdamW groups for a LoRA model, token labels, LoRA's size."""
import torch

from .. import adapters, finetune
from ..models import MeanPoolingBertForSequenceClassification
from . import expect, expect_number, rates_by_parameter, small_bert


def _small_classifier():
    return small_bert(MeanPoolingBertForSequenceClassification, layers=2)


def check_lora_groups(lora_groups) -> None:
    """``lora_groups(model, lr_lora, lr_head)`` -> AdamW groups over what trains: LoRA's matrices and the head."""
    model = adapters.lora(_small_classifier(), r=2, alpha=4)
    groups = lora_groups(model, 1e-3, 3e-3)
    rate_of = rates_by_parameter(groups)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            expect(id(p) not in rate_of, f"{name} is frozen (requires_grad is False) but in a group: leave frozen "
                                         "weights out, or AdamW keeps them in its groups for nothing")
            continue
        expect(id(p) in rate_of, f"{name} trains but is in no group, so it would never change")
        want = 1e-3 if "lora_" in name else 3e-3
        expect(rate_of[id(p)] == want, f"{name} has lr {rate_of[id(p)]:g}; LoRA's matrices (names with 'lora_') "
                                       f"take lr_lora, the head's trained copy lr_head: expected {want:g}")
    trained = sum(p.numel() for p in model.parameters() if id(p) in rate_of)
    print(f"Correct: {trained:,} weights in {len(groups)} groups, none of the "
          f"{adapters.frozen_parameters(model):,} frozen ones.")


def check_token_labels(token_labels, tokenizer) -> None:
    """``token_labels(word_ids, word_labels)`` -> a label per token: the word's on its first piece, else -100."""
    cases = [([None, 0, 0, 1, 2, 2, 2, None], [5, 6, 7], [-100, 5, -100, 6, 7, -100, -100, -100]),
             ([None, 0, 1, None], [3, 4], [-100, 3, 4, -100]),
             ([None, None], [], [-100, -100])]
    for word_ids, word_labels, want in cases:
        got = token_labels(list(word_ids), list(word_labels))
        expect(isinstance(got, list) and len(got) == len(word_ids),
               f"return a list with one label per token ({len(word_ids)} here), not {got!r}")
        for i, (g, w, word) in enumerate(zip(got, want, word_ids)):
            if word is None:
                expect(g == -100, f"token {i} is a special token (word id None) and got {g}: give it -100")
            elif w == -100:
                expect(g == -100, f"token {i} is a later piece of word {word} and got {g}: only a word's first "
                                  "piece carries its label, so the word counts once; give the rest -100")
            else:
                expect(g == w, f"token {i} is the first piece of word {word}, whose label is {w}, but got {g}")
    words, labels = ["아이돌하고만", "계속", "찍어서"], [0, 3, 1]
    encoding = tokenizer(words, is_split_into_words=True)
    expect(token_labels(encoding.word_ids(), labels) == finetune.token_labels(encoding.word_ids(), labels),
           "on a real tokenizer's word_ids() your labels differ from the first-piece rule")
    print(f"Correct: on {' '.join(words)} ({len(encoding.word_ids())} tokens) each word is labelled once.")


def check_lora_count(lora_count) -> None:
    """``lora_count(model, r, modules)`` -> LoRA's weights: r x (inputs + outputs) for each adapted linear layer."""
    for r, modules in ((2, ("query", "value")), (4, ("query", "key", "value")), (1, ("dense",))):
        model = _small_classifier()
        got = lora_count(model, r, modules)
        expect_number(got, "how many weights LoRA adds")
        want = adapters.trainable_parameters(adapters.lora(_small_classifier(), r=r, alpha=2 * r, modules=modules))
        want -= sum(p.numel() for n, p in model.named_parameters() if n.startswith(adapters.HEAD + "."))
        expect(got == want or r == 1 or got != want // r,
               "that is the count for r = 1: each adapted layer adds r x (inputs + outputs)")
        expect(got == want, f"for r={r} on {', '.join(modules)} peft adds {want:,} weights, you counted {got:,}: "
                            "sum r x (in_features + out_features) over every nn.Linear whose name ends with one "
                            "of the modules (A is r x in, B is out x r)")
    print("Correct: your count matches peft's for three ranks and sets of modules.")
