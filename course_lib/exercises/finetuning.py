"""Checks for notebook 07 (fine-tuning and transfer learning)."""
import math

import torch
from transformers import BertForSequenceClassification

from .. import label_budget, optim
from . import expect, expect_number, rates_by_parameter, small_bert


def check_layerwise_groups(layerwise_groups) -> None:
    """``layerwise_groups(model, lr, decay)`` -> AdamW groups, each ``{"params": [...], "lr": rate}``."""
    model, lr, decay = small_bert(BertForSequenceClassification), 1e-3, 0.8
    groups = layerwise_groups(model, lr, decay)
    rate_of = rates_by_parameter(groups)
    n = optim.num_layers(model)
    for name, p in model.named_parameters():
        expect(id(p) in rate_of, f"{name} is in no group, so it would never train")
    for name, p in model.named_parameters():
        group = optim.layer_group(name, n)
        want = lr * decay ** (n + 1 - group)
        got = rate_of[id(p)]
        expect(abs(got - want) <= 1e-6 * want,
               f"{name} (layer group {group} of 0..{n + 1}) has lr {got:.3g}; expected {want:.3g} = "
               f"lr x {decay}^{n + 1 - group}: one factor of decay per group between it and the head")
    print(f"Correct: {len(groups)} groups; the embeddings train at {lr * decay ** (n + 1):.2g}, the head at {lr:.0e}.")


def check_mean_pooling(mean_pooling, model, batch: dict) -> None:
    """``mean_pooling(hidden, attention_mask)`` -> one vector per sentence, the mean over its real tokens."""
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    got = mean_pooling(hidden, mask)
    expect(isinstance(got, torch.Tensor) and got.shape == (3, 4),
           f"return a tensor of shape (batch, hidden) = (3, 4), not {tuple(getattr(got, 'shape', ()))}")
    want = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    expect(not torch.allclose(got, hidden.mean(1)),
           "you averaged over every position, padding included: multiply by the attention mask first")
    expect(not torch.allclose(got, (hidden * mask[..., None]).sum(1)),
           "that is the sum of the real tokens' vectors: divide by how many there are (the mask's row sums)")
    expect(not torch.allclose(got, hidden[:, 0]), "that is the first token's vector ([CLS] pooling), not the mean")
    expect(torch.allclose(got, want, atol=1e-6), "the vectors differ from the mean over the real tokens")
    model.eval()
    with torch.no_grad():
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        hidden = model.base_model(**inputs)[0]
        logits = model.classifier(model.drop(model.head(mean_pooling(hidden, inputs["attention_mask"]))))
        expect(torch.allclose(logits, model(**inputs).logits, atol=1e-5),
               "on the real model your pooling gives other logits than the model's own mean pooling")
    print("Correct: your pooling reproduces the classifier's logits on a real batch, padding and all.")


def _crossing(curve: dict, target: float):
    """Where a label-budget curve first reaches ``target``, linear in log(labels) between measured budgets."""
    budgets = sorted(curve)
    if curve[budgets[0]] >= target:
        return float(budgets[0])
    for lo, hi in zip(budgets, budgets[1:]):
        if curve[hi] >= target:
            share = (target - curve[lo]) / (curve[hi] - curve[lo])
            return float(math.exp(math.log(lo) + share * (math.log(hi) - math.log(lo))))
    return None


def check_labels_to_match(labels_to_match, rows: list, reference: int = 5000) -> None:
    """``labels_to_match(curve, target)``: the labels at which ``curve`` ({labels: mean accuracy}) first reaches
    ``target``, read between measured budgets on a log scale of labels; None if it never does."""
    summary = {arm: {n: mean for n, (mean, _, _) in by_n.items()} for arm, by_n in label_budget.summarise(rows).items()}
    cases = {"a curve that starts above the target": ({50: 70.0, 100: 75.0}, 60.0),
             "a curve that never reaches it": ({50: 50.0, 100: 55.0}, 60.0),
             "a crossing halfway between 100 and 400 labels": ({100: 60.0, 400: 70.0}, 65.0)}
    pretrained, scratch = summary["MiniLM, pretrained"], summary["MiniLM, random weights"]
    cases["pretrained MiniLM against TF-IDF at 5,000 labels"] = (pretrained, summary[label_budget.TFIDF][reference])
    cases["pretrained MiniLM against its random start at 5,000 labels"] = (pretrained, scratch[reference])
    for what, (curve, target) in cases.items():
        want, got = _crossing(curve, target), labels_to_match(dict(curve), target)
        if want is None:
            expect(got is None, f"for {what} return None (no measured budget reaches {target:.1f}%), not {got!r}")
            continue
        expect_number(got, "a number of labels")
        budgets = sorted(curve)
        linear = next((lo + (target - curve[lo]) / (curve[hi] - curve[lo]) * (hi - lo)
                       for lo, hi in zip(budgets, budgets[1:]) if curve[lo] < target <= curve[hi]), None)
        expect(linear is None or abs(got - linear) > 1e-6 * linear or abs(linear - want) < 1e-6 * want,
               f"for {what} you interpolated in labels ({got:,.0f}); budgets are spaced by factors, so read "
               f"between them in log(labels)")
        expect(abs(got - want) <= 1e-6 * want, f"for {what} the curve reaches {target:.1f}% at about {want:,.0f} "
               f"labels, not {got:,.0f}" + (": interpolate between the two budgets around the target instead of "
                                            "returning a measured one" if got in curve and want not in curve else ""))
    tfidf = summary[label_budget.TFIDF][reference]
    at = _crossing(pretrained, tfidf)
    print(f"Correct: pretrained MiniLM reaches TF-IDF's {tfidf:.1f}% at {reference:,} labels with about {at:,.0f} "
          f"labels ({reference / at:.0f}x fewer), read between the measured budgets.")