"""The trainer: it learns, accumulates exactly, resumes exactly, and sets the learning rates it promises."""
import time

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from course_lib import optim
from course_lib.trainer import STATE_JSON, Trainer, TrainConfig, accuracy, lr_multiplier

VOCAB, LENGTH = 40, 12


def tiny_classifier(seed=0, dropout=0.1):
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=LENGTH, num_labels=2,
                     hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return BertForSequenceClassification(cfg)


def toy_data(n=256, seed=0):
    """Label 1 iff token 7 occurs: learnable in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(8, VOCAB, (n, LENGTH), generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    ids[labels == 1, torch.randint(0, LENGTH, (int(labels.sum()),), generator=g)] = 7
    return [{"input_ids": i, "labels": y} for i, y in zip(ids, labels)]


def collate(examples):
    return {"input_ids": torch.stack([e["input_ids"] for e in examples]),
            "labels": torch.stack([e["labels"] for e in examples])}


def make(model=None, **cfg):
    defaults = dict(max_steps=60, batch_size=32, lr=3e-3, warmup_steps=5, progress=False)
    return Trainer(model or tiny_classifier(), toy_data(), collate, TrainConfig(**{**defaults, **cfg}),
                   eval_data=toy_data(128, seed=1), accuracy_fn=accuracy)


def parameters(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_loss_falls_and_model_learns():
    trainer = make()
    before = trainer.evaluate()
    trainer.fit()
    after = trainer.history["eval"][-1]
    assert after["loss"] < 0.5 * before["loss"]
    assert after["accuracy"] > 0.9
    assert trainer.cost.tokens == 60 * 32 * LENGTH and trainer.cost.flops > 0


def test_gradient_accumulation_matches_one_big_batch():
    one = make(tiny_classifier(dropout=0.0), max_steps=3)
    four = make(tiny_classifier(dropout=0.0), max_steps=3, grad_accum=4)
    one.fit(), four.fit()
    for (name, a), b in zip(one.model.named_parameters(), four.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


def test_accumulation_weights_micro_batches_by_targets():
    """Micro-batches with unequal numbers of targets must not be averaged naively."""
    examples = toy_data(8)
    for i, e in enumerate(examples):
        e["labels"] = e["labels"] if i < 2 else torch.tensor(-100)  # 2 targets in the first micro-batch only
    model = tiny_classifier(dropout=0.0)
    big = Trainer(model, examples, collate, TrainConfig(max_steps=1, batch_size=8, progress=False))
    split = Trainer(tiny_classifier(dropout=0.0), examples, collate,
                    TrainConfig(max_steps=1, batch_size=8, grad_accum=4, progress=False))
    assert big.batch_indices(0) == split.batch_indices(0)
    examples_in_order = [examples[i] for i in big.batch_indices(0)]
    with_targets = [e for e in examples_in_order if e["labels"] != -100]
    assert len(with_targets) == 2
    loss_big = big.train_step(examples_in_order)
    loss_split = split.train_step(examples_in_order)
    assert loss_big == pytest.approx(loss_split, rel=1e-5)


class Interrupt(Exception):
    pass


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    full = make(max_steps=12)
    full.fit()

    calls = {"n": 0}

    def collate_then_crash(examples):
        calls["n"] += 1
        if calls["n"] > 7:  # dies during step 8, after the checkpoint at step 6
            raise Interrupt
        return collate(examples)

    crashing = make(max_steps=12, checkpoint_every=3)
    crashing.collate, crashing.out_dir = collate_then_crash, tmp_path / "ckpt"
    with pytest.raises(Interrupt):
        crashing.fit()
    assert not (tmp_path / "ckpt.tmp").exists()

    resumed = make(tiny_classifier(seed=123), max_steps=12).resume(tmp_path / "ckpt")
    assert resumed.step == 6
    resumed.fit()
    for (name, a), b in zip(full.model.named_parameters(), resumed.model.parameters()):
        assert torch.equal(a, b), name
    assert [h["loss"] for h in resumed.history["train"]] == [h["loss"] for h in full.history["train"]]


def test_resume_refuses_a_directory_without_state(tmp_path):
    with pytest.raises(FileNotFoundError, match=STATE_JSON):
        make().resume(tmp_path)


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    trainer = make(max_steps=1)
    trainer.save(tmp_path / "ckpt")
    other = BertForSequenceClassification(BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=1, intermediate_size=32,
                                                     max_position_embeddings=LENGTH))
    with pytest.raises(RuntimeError, match="size mismatch"):
        make(other).resume(tmp_path / "ckpt")


def test_warmup_then_linear_decay():
    cfg = TrainConfig(max_steps=110, warmup_steps=10, schedule="linear")
    assert lr_multiplier(0, cfg) == pytest.approx(0.1)
    assert lr_multiplier(9, cfg) == pytest.approx(1.0)
    assert lr_multiplier(60, cfg) == pytest.approx(0.5)
    assert lr_multiplier(110, cfg) == pytest.approx(0.0)


def test_layer_wise_decay_gives_each_group_its_rate():
    model = tiny_classifier()
    groups = optim.param_groups(model, lr=1e-3, weight_decay=0.1, layer_decay=0.5)
    by_group = {g["layer_group"]: g["lr"] for g in groups}
    assert by_group == pytest.approx({0: 1e-3 * 0.125, 1: 1e-3 * 0.25, 2: 1e-3 * 0.5, 3: 1e-3})
    for g in groups:
        decays = g["weight_decay"] > 0
        assert all((".bias" not in n and "LayerNorm" not in n) == decays for n in g["names"]), g["names"]


def test_freezing_and_gradual_unfreezing():
    model = tiny_classifier()
    optim.freeze_to(model, 3)  # only the head (group 3 of 0..3) trains
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("classifier", "bert.pooler")) for n in trainable)

    trainer = make(max_steps=4, unfreeze={0: 1, 2: None})
    frozen_weight = trainer.model.bert.embeddings.word_embeddings.weight.detach().clone()
    trainer.fit()
    assert all(p.requires_grad for p in trainer.model.parameters())  # unfrozen at step 2
    assert not torch.equal(frozen_weight, trainer.model.bert.embeddings.word_embeddings.weight)

    frozen_run = make(max_steps=3, unfreeze={0: 1})
    before = frozen_run.model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    frozen_run.fit()
    assert torch.equal(before, frozen_run.model.bert.encoder.layer[0].attention.self.query.weight)


def test_bf16_autocast_trains_on_cpu():
    trainer = make(max_steps=5, precision="bf16")
    trainer.fit()
    assert trainer.precision == "bf16" and torch.isfinite(torch.tensor(trainer.history["train"][-1]["loss"]))


@pytest.mark.parametrize("bad", [dict(batch_size=30, grad_accum=4), dict(schedule="exp"), dict(precision="fp8")])
def test_impossible_configs_are_refused(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_progress_bar_redraws_at_most_about_once_a_second(capsys):
    """A redraw per step would flood a notebook's output channel on long runs (Jupyter drops output)."""
    trainer = make(max_steps=200, batch_size=8, progress=True)
    start = time.perf_counter()
    trainer.fit()
    elapsed = time.perf_counter() - start
    redraws = capsys.readouterr().err.count("train:")
    assert redraws <= elapsed + 3, f"{redraws} redraws in {elapsed:.1f} s"
