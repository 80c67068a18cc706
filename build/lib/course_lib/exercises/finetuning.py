"""Checks for notebook 07 (fine-tuning and transfer learning)."""
import torch
from transformers import BertConfig, BertForSequenceClassification

from .. import label_budget, optim
from . import expect, expect_number


def _small_bert():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config)


def check_layerwise_groups(layerwise_groups) -> None:
    """``layerwise_groups(model, lr, decay)`` -> AdamW groups, each ``{"params": [...], "lr": rate}``."""
    model, lr, decay = _small_bert(), 1e-3, 0.8
    groups = layerwise_groups(model, lr, decay)
    expect(isinstance(groups, list) and all(isinstance(g, dict) and {"params", "lr"} <= set(g) for g in groups),
           "return a list of dicts, each with 'params' (a list of parameters) and 'lr' (a number)")
    rate_of = {}
    for g in groups:
        for p in g["params"]:
            expect(id(p) not in rate_of, "a parameter is in two groups: AdamW refuses that; put each in exactly one")
            rate_of[id(p)] = g["lr"]
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


def check_budget_reading(labels_to_match_tfidf, rows: list, reference: int = 5000) -> None:
    """The smallest measured budget at which pretrained MiniLM's mean reaches TF-IDF's at ``reference`` labels."""
    answer = labels_to_match_tfidf()
    expect_number(answer, "a number of labels")
    summary = label_budget.summarise(rows)
    curve = summary["MiniLM, pretrained"]
    target = summary[label_budget.TFIDF][reference][0]
    _, want = label_budget.labels_saved(summary, "MiniLM, pretrained", label_budget.TFIDF, reference)
    expect(answer in curve, f"answer with one of the measured budgets: {sorted(curve)}")
    mean = curve[answer][0]
    expect(mean >= target, f"at {answer:,} labels pretrained MiniLM averages {mean:.1f}%, below TF-IDF's "
                           f"{target:.1f}% at {reference:,}: look further right on the curve")
    expect(answer == want, f"{answer:,} labels reach it, but so does a smaller budget: "
                           f"{want:,} labels already average {curve[want][0]:.1f}%")
    print(f"Correct: {answer:,} labels ({curve[answer][0]:.1f}%) match TF-IDF with {reference:,} "
          f"({target:.1f}%): {reference / answer:.0f}x fewer labels.")
