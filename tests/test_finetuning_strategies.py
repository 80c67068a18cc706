"""Notebook 07's library: label-budget bookkeeping, the TF-IDF control, fine-tuning strategies as trainer
settings, forgetting measured through the pretrained MLM head, and the exercise checks."""
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from course_lib import finetune, label_budget as lb, objectives, optim, pretraining, results, strategies
from course_lib.data import Split
from course_lib.errors import ConfigError
from course_lib.exercises import CheckFailed, grade
from course_lib.exercises import finetuning as checks
from course_lib.trainer import evaluate

WORDS = {1: ["good", "great", "fine", "moving"], 0: ["bad", "dull", "awful", "boring"]}
TOY = [f"the film is {w} and the actors are {v} ." for w in WORDS[1] + WORDS[0] for v in ("young", "old")] * 10


def toy_split(n: int, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    labels = [i % 2 for i in range(n)]
    texts = [f"the film is {WORDS[y][int(torch.randint(4, (1,), generator=g))]} ." for y in labels]
    return Split(texts, labels)


@pytest.fixture(scope="module")
def checkpoint(pretrain_tiny):
    """A tiny pretrained course BERT (ModernBERT block) saved like the real one."""
    return pretrain_tiny("bert", TOY, vocab_size=60, block_size=16)


def rows_for(curves: dict) -> list:
    return [{"arm": arm, "labels": n, "seed": s, "dev": acc[s] / 100}
            for arm, by_n in curves.items() for n, acc in by_n.items() for s in range(len(acc))]


CURVES = {"MiniLM, pretrained": {50: [60, 62], 100: [70, 72], 5000: [88, 90]},
          "MiniLM, random weights": {50: [50, 50], 100: [52, 54], 5000: [70, 71]},
          lb.TFIDF: {50: [55, 55], 100: [58, 60], 5000: [71, 71]}}


def test_summary_is_mean_and_spread_per_arm_and_budget():
    summary = lb.summarise(rows_for(CURVES))
    assert summary["MiniLM, pretrained"][100] == pytest.approx((71.0, 2 ** 0.5, 2))
    assert "72" not in lb.table(summary) and "71.0" in lb.table(summary)


def test_labels_saved_is_the_smallest_measured_budget_that_matches():
    summary = lb.summarise(rows_for(CURVES))
    assert lb.labels_saved(summary, "MiniLM, pretrained", "MiniLM, random weights", 5000) == (50.0, 100)
    never = lb.summarise(rows_for({**CURVES, "MiniLM, pretrained": {50: [60], 5000: [69]}}))
    assert lb.labels_saved(never, "MiniLM, pretrained", "MiniLM, random weights", 5000) == (None, None)


def test_recipe_gives_small_budgets_a_minimum_of_steps_and_large_ones_epochs():
    assert finetune.recipe(50, 1e-3).max_steps == finetune.MIN_STEPS
    assert finetune.recipe(50, 1e-3).batch_size == finetune.BATCH_SIZE
    assert finetune.recipe(5000, 1e-3).max_steps == 5000 * finetune.EPOCHS // finetune.BATCH_SIZE
    assert finetune.recipe(5000, 1e-3).warmup_steps == finetune.recipe(5000, 1e-3).max_steps // 10
    assert finetune.recipe(10, 1e-3).batch_size == 10  # a batch cannot hold more than the labels
    assert finetune.recipe(20_000, 1e-4, epochs=1).max_steps == 20_000 // finetune.BATCH_SIZE


def test_every_arm_fine_tunes_at_the_rate_the_course_gives_its_start():
    assert lb.ARMS["MiniLM, pretrained"].lr == finetune.learning_rate("minilm") == 1e-4
    assert lb.ARMS["MiniLM, random weights"].lr == finetune.learning_rate("minilm", "scratch")
    assert lb.ARMS["course BERT, random weights"].lr == finetune.learning_rate("course", "scratch")
    with pytest.raises(ConfigError, match="no learning rate for 'minilm' from 'embeddings'"):
        finetune.learning_rate("minilm", "embeddings")


def test_tfidf_baseline_learns_the_words_and_scores_dev_and_test():
    row = lb.run_tfidf(toy_split(40), toy_split(20, seed=1), seed=3, test=toy_split(20, seed=2))
    assert row["arm"] == lb.TFIDF and row["labels"] == 40 and row["seed"] == 3
    assert row["dev"] == 1.0 and row["test"] == 1.0


def test_gradual_unfreezing_starts_with_the_head_and_frees_everything_by_half_way():
    schedule = strategies.gradual_unfreezing(steps=64, n_groups=8)
    assert schedule[0] == 1
    assert list(schedule.values()) == [1, 2, 3, 4, 5, 6, 7, None]
    assert max(schedule) <= 32


def weights(model) -> dict:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("strategy", strategies.STRATEGIES)
def test_each_strategy_trains_what_it_says(strategy, checkpoint, monkeypatch):
    trained = {}
    real_finetune = strategies.finetune

    def spy(model, tokenizer, train, dev, config):
        before = weights(model)
        trainer = real_finetune(model, tokenizer, train, dev, config)
        trained.update({name: not torch.equal(before[name], p) for name, p in model.named_parameters()})
        trained["_rates"] = sorted({g["initial_lr"] for g in trainer.optimizer.param_groups})
        return trainer

    monkeypatch.setattr(strategies, "finetune", spy)
    row = strategies.run_strategy(strategy, checkpoint, "pretrained", toy_split(64), toy_split(16, 1), lr=1e-3)
    rates = trained.pop("_rates")
    model, _ = finetune.load_classifier(checkpoint)
    n = optim.num_layers(model)
    head = {name for name, _ in model.named_parameters() if optim.layer_group(name, n) == n + 1}
    head_size = sum(p.numel() for name, p in model.named_parameters() if name in head)
    if strategy == "head only":
        assert {name for name, changed in trained.items() if changed} <= head
        assert row["trainable_at_start"] == head_size
    else:
        assert trained["model.embeddings.tok_embeddings.weight"] and trained["classifier.weight"]
        assert row["trainable_at_start"] == (head_size if strategy == "gradual unfreezing" else row["params"])
    expected_rates = {"layer-wise decay": n + 2, "discriminative by part": 3}.get(strategy, 1)
    assert len(rates) == expected_rates and max(rates) == pytest.approx(1e-3)


def test_masked_lm_loss_reads_the_encoder_of_the_classifier(checkpoint):
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    blocks = pretraining.pack(tokenizer, TOY[:40], block_size=16)
    classifier, _ = finetune.load_classifier(checkpoint)
    own = evaluate(AutoModelForMaskedLM.from_pretrained(checkpoint), blocks,
                   objectives.masked_lm_collator(tokenizer), seed=0)["loss"]
    assert finetune.masked_lm_loss(classifier, checkpoint, blocks) == pytest.approx(own)
    with torch.no_grad():
        classifier.model.layers[0].attn.Wqkv.weight.mul_(3.0)
    assert finetune.masked_lm_loss(classifier, checkpoint, blocks) != pytest.approx(own)


def test_pooling_replaces_the_checkpoints_choice_and_refuses_what_does_not_exist(checkpoint):
    assert finetune.classifier(checkpoint, pooling="cls").config.classifier_pooling == "cls"
    assert finetune.classifier(checkpoint, pooling="mean").config.classifier_pooling == "mean"
    with pytest.raises(ConfigError, match="'mean' or 'cls'"):
        finetune.classifier(checkpoint, pooling="max")


def test_transfer_scores_the_test_split_once_at_the_end_and_agrees_with_transfer_accuracy(checkpoint):
    train, dev, test = toy_split(32), toy_split(16, 1), toy_split(16, 2)
    scores = finetune.transfer_scores(checkpoint, train, dev, seed=0, test=test, max_steps=3)
    assert set(scores) == {"dev", "test"} and all(0 <= v <= 1 for v in scores.values())
    assert finetune.transfer_accuracy(checkpoint, train, dev, seed=0, max_steps=3) == scores["dev"]
    assert finetune.transfer_scores(checkpoint, train, dev, seed=0, max_steps=3) == {"dev": scores["dev"]}


# --- the graded exercises --------------------------------------------------------------------------

def reference_groups(model, lr, decay):
    return [{"params": g["params"], "lr": g["lr"]} for g in optim.param_groups(model, lr, layer_decay=decay)]


def test_layerwise_check_accepts_the_course_groups_and_names_a_wrong_rate(capsys):
    grade("Exercise 1", checks.check_layerwise_groups, reference_groups)
    assert "Correct" in capsys.readouterr().out

    def off_by_one(model, lr, decay):
        n = optim.num_layers(model)
        return [{"params": [p], "lr": lr * decay ** (n - optim.layer_group(name, n))}
                for name, p in model.named_parameters()]
    with pytest.raises(CheckFailed, match=r"bert\.embeddings\..* \(layer group 0 of 0\.\.4\) has lr"):
        checks.check_layerwise_groups(off_by_one)


def test_layerwise_check_names_a_missing_and_a_doubled_parameter():
    def forgets_the_head(model, lr, decay):
        return [{"params": [p], "lr": lr} for name, p in model.named_parameters() if "classifier" not in name]
    with pytest.raises(CheckFailed, match="classifier.weight is in no group"):
        checks.check_layerwise_groups(forgets_the_head)

    def doubled(model, lr, decay):
        params = list(model.parameters())
        return [{"params": params, "lr": lr}, {"params": params[:1], "lr": lr}]
    with pytest.raises(CheckFailed, match="in two groups"):
        checks.check_layerwise_groups(doubled)


@pytest.fixture(scope="module")
def classifier_and_batch(checkpoint):
    model, tokenizer = finetune.load_classifier(checkpoint)
    return model, tokenizer(["the film is good and the actors are young .", "dull ."], padding=True,
                            return_tensors="pt")


def test_mean_pooling_check_accepts_the_masked_mean_and_explains_the_usual_mistakes(classifier_and_batch, capsys):
    model, batch = classifier_and_batch
    assert batch["attention_mask"].min() == 0  # the batch has padding, or the check could not tell
    right = lambda h, m: (h * m[..., None]).sum(1) / m.sum(1, keepdim=True)
    checks.check_mean_pooling(right, model, batch)
    assert "Correct" in capsys.readouterr().out
    mistakes = {"padding included": lambda h, m: h.mean(1),
                "the sum of the real tokens": lambda h, m: (h * m[..., None]).sum(1),
                r"\[CLS\] pooling": lambda h, m: h[:, 0],
                r"shape \(batch, hidden\)": lambda h, m: h}
    for hint, wrong in mistakes.items():
        with pytest.raises(CheckFailed, match=hint):
            checks.check_mean_pooling(wrong, model, batch)


def test_labels_to_match_check_interpolates_on_a_log_scale_and_names_the_usual_mistakes(capsys):
    rows = rows_for(CURVES)

    def right(curve, target):
        budgets = sorted(curve)
        if curve[budgets[0]] >= target:
            return budgets[0]
        for lo, hi in zip(budgets, budgets[1:]):
            if curve[hi] >= target:
                share = (target - curve[lo]) / (curve[hi] - curve[lo])
                return lo * (hi / lo) ** share
        return None
    checks.check_labels_to_match(right, rows)
    assert "Correct: pretrained MiniLM reaches TF-IDF's 71.0% at 5,000 labels" in capsys.readouterr().out

    def linear(curve, target):
        budgets = sorted(curve)
        if curve[budgets[0]] >= target:
            return budgets[0]
        for lo, hi in zip(budgets, budgets[1:]):
            if curve[hi] >= target:
                return lo + (target - curve[lo]) / (curve[hi] - curve[lo]) * (hi - lo)
        return None
    with pytest.raises(CheckFailed, match="interpolated in labels"):
        checks.check_labels_to_match(linear, rows)
    with pytest.raises(CheckFailed, match="instead of returning a measured one"):
        checks.check_labels_to_match(lambda curve, target: next((n for n in sorted(curve) if curve[n] >= target), None), rows)
    with pytest.raises(CheckFailed, match="return None"):
        checks.check_labels_to_match(lambda curve, target: right(curve, target) or max(curve), rows)

    def unattempted(curve, target):
        raise NotImplementedError
    with pytest.raises(CheckFailed, match="not attempted"):
        grade("Exercise 3", checks.check_labels_to_match, unattempted, rows)


def test_notebook_07_results_files_hold_the_grid_it_reads():
    """The committed benchmark results cover every arm, budget and seed the notebook plots."""
    rows = results.read_results(Path(__file__).parents[1] / "benchmarks" / "label_budget.jsonl")
    seen = {(r["arm"], r["labels"], r["seed"]) for r in rows}
    assert seen >= {(arm, n, s) for arm in [*lb.ARMS, lb.TFIDF] for n in lb.BUDGETS for s in range(3)}
    assert all("test" in r for r in rows if r["labels"] == max(lb.BUDGETS))


def test_strategy_table_and_sweep_summarise_the_results_file():
    rows = [{"strategy": s, "start": start, "lr": lr, "seed": seed, "dev": 0.70 + 0.02 * seed,
             "trainable_at_start": 1 if s == "head only" else 100, "params": 100, "seconds": 10.0}
            for s, start, lr in strategies.COMPARED + strategies.SWEPT for seed in range(2)]
    table = strategies.table(rows)
    assert len(table.splitlines()) == 1 + len(strategies.COMPARED)
    assert "71.0 ± 1.4 (n=2)" in table and "1.0%" in table and "100.0%" in table
    assert strategies.sweep(rows, seeds=1)["scratch"] == {lr: pytest.approx(70.0) for lr in strategies.SWEEP_RATES}
    assert strategies.sweep(rows, seeds=2)["pretrained"][1e-4] == pytest.approx(71.0)


def test_the_label_budget_plot_draws_every_run_when_given_the_runs():
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.collections import PathCollection
    rows = rows_for(CURVES)
    dots = lb.plot(lb.summarise(rows), rows=rows).collections
    assert sum(len(c.get_offsets()) for c in dots if isinstance(c, PathCollection)) == len(rows)
    assert not any(isinstance(c, PathCollection) for c in lb.plot(lb.summarise(rows)).collections)
