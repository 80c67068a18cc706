"""The trainer: it learns, accumulates exactly, resumes exactly, logs what it used, charges every second."""
import time
from types import SimpleNamespace

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from course_lib import costs, distributed, hardware, optim, trainer as trainer_module
from course_lib.checkpoints import STATE_JSON
from course_lib.errors import CheckpointError, ConfigError
from course_lib.trainer import Trainer, TrainConfig, accuracy, lr_multiplier

VOCAB, LENGTH = 40, 12


@pytest.fixture(autouse=True)
def known_cpu_peak(monkeypatch):
    """A fixed CPU peak: MFU is then arithmetic, and no test waits for a measurement."""
    monkeypatch.setenv(hardware.CPU_PEAK_ENV, "50")


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


def assert_same_weights(a, b):
    for (name, x), y in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(x, y), name


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
    """Micro-batches with unequal numbers of targets take the step one big batch would: the weights agree."""
    examples = toy_data(8)
    for i, e in enumerate(examples):
        e["labels"] = e["labels"] if i in (0, 5) else torch.tensor(-100)  # 2 targets, in different micro-batches
    big = Trainer(tiny_classifier(dropout=0.0), examples, collate, TrainConfig(max_steps=1, batch_size=8, progress=False))
    split = Trainer(tiny_classifier(dropout=0.0), examples, collate,
                    TrainConfig(max_steps=1, batch_size=8, grad_accum=4, progress=False))
    naive = Trainer(tiny_classifier(dropout=0.0), examples, collate,
                    TrainConfig(max_steps=1, batch_size=8, grad_accum=4, progress=False), targets=lambda b: 1)
    for t in (big, split, naive):
        t.fit()
    for (name, a), b, c in zip(big.model.named_parameters(), split.model.parameters(), naive.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)
    assert any(not torch.allclose(a, c, atol=1e-6) for a, c in zip(big.model.parameters(), naive.model.parameters()))


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
    assert_same_weights(full.model, resumed.model)
    assert [h["loss"] for h in resumed.history["train"]] == [h["loss"] for h in full.history["train"]]


def test_collating_in_worker_processes_changes_nothing():
    here = make(max_steps=8)  # each trainer seeds the global generator that dropout draws from: one at a time
    here.fit()
    workers = make(max_steps=8, num_workers=2)
    workers.fit()
    assert_same_weights(here.model, workers.model)
    assert [h["loss"] for h in here.history["train"]] == [h["loss"] for h in workers.history["train"]]


def test_resume_refuses_a_directory_without_state(tmp_path):
    with pytest.raises(CheckpointError, match=STATE_JSON):
        make().resume(tmp_path)


def test_resume_refuses_a_checkpoint_of_another_model_naming_a_tensor(tmp_path):
    trainer = make(max_steps=1)
    trainer.save(tmp_path / "ckpt")
    other = BertForSequenceClassification(BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=1, intermediate_size=32,
                                                     max_position_embeddings=LENGTH))
    with pytest.raises(CheckpointError, match="does not match this model: size mismatch for .*embeddings"):
        make(other, max_steps=1).resume(tmp_path / "ckpt")


def test_warmup_then_linear_decay():
    cfg = TrainConfig(max_steps=110, warmup_steps=10, schedule="linear")
    assert lr_multiplier(0, cfg) == pytest.approx(0.1)
    assert lr_multiplier(9, cfg) == pytest.approx(1.0)
    assert lr_multiplier(60, cfg) == pytest.approx(0.5)
    assert lr_multiplier(110, cfg) == pytest.approx(0.0)


def test_the_history_logs_the_rate_each_update_used(monkeypatch):
    trainer = make(max_steps=6, warmup_steps=5, lr=1e-3)
    used = []
    step = trainer.optimizer.step

    def spy(*args, **kwargs):
        used.append(trainer.optimizer.param_groups[-1]["lr"])
        return step(*args, **kwargs)
    monkeypatch.setattr(trainer.optimizer, "step", spy)
    trainer.fit()
    assert [h["lr"] for h in trainer.history["train"]] == pytest.approx(used)
    assert used == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3, 1e-3])  # warmup, then the decay's first step


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
    assert trainer._flops.per_token == costs.flops_profile(trainer.model).per_token  # priced as it trains now
    assert trainer._flops.per_token > 2.5 * costs.flops_profile(model).per_token  # a frozen body: forward only

    frozen_run = make(max_steps=3, unfreeze={0: 1})
    before = frozen_run.model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    frozen_run.fit()
    assert torch.equal(before, frozen_run.model.bert.encoder.layer[0].attention.self.query.weight)


def test_bf16_autocast_trains_on_cpu():
    """The GPU's precision path, exercised on CPU: autocast to bf16 still learns."""
    trainer = make(precision="bf16")
    before = trainer.evaluate()["loss"]
    trainer.fit()
    assert trainer.precision == "bf16"
    assert trainer.history["eval"][-1]["loss"] < 0.5 * before


def test_a_bf16_run_resumes_in_fp16_and_back(tmp_path):
    """bf16 keeps no loss scale; fp16 does. Switching precision on resume keeps the run going where it was."""
    bf16 = make(max_steps=2, precision="bf16", min_lr_ratio=0.1)
    bf16.fit()
    bf16.save(tmp_path / "bf16")
    fp16 = make(max_steps=4, precision="fp16", min_lr_ratio=0.1).resume(tmp_path / "bf16")
    assert fp16.step == 2 and fp16.scaler.is_enabled()
    fp16.fit()
    fp16.save(tmp_path / "fp16")
    assert fp16.state_dict()[1]["scaler"]["scale"] > 0  # fp16's loss scale is saved
    back = make(max_steps=6, precision="bf16", min_lr_ratio=0.1).resume(tmp_path / "fp16")
    back.fit()
    losses = [h["loss"] for h in back.history["train"]]
    assert [h["step"] for h in back.history["train"]] == [1, 2, 3, 4, 5, 6]
    assert all(torch.isfinite(torch.tensor(losses))) and back.optimizer.state_dict()["state"][0]["step"] == 6


def test_checkpoint_keeps_the_random_state_of_the_device_it_trains_on(tmp_path):
    make(max_steps=1).save(tmp_path / "ckpt")
    from safetensors.torch import load_file
    keys = set(load_file(tmp_path / "ckpt" / "trainer_state.safetensors"))
    assert "rng.torch" in keys and "rng.cuda" not in keys  # a CPU run saves no GPU state, whatever is installed


def test_decay_ends_at_decay_steps_and_stays_at_the_floor():
    cfg = TrainConfig(max_steps=300, warmup_steps=10, decay_steps=110, min_lr_ratio=0.1)
    assert lr_multiplier(60, cfg) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_multiplier(110, cfg) == lr_multiplier(299, cfg) == pytest.approx(0.1)


def test_extending_a_finished_run_never_raises_the_learning_rate(tmp_path):
    first = make(max_steps=10, warmup_steps=2, min_lr_ratio=0.1)
    first.fit()
    first.save(tmp_path / "ckpt")
    extended = make(max_steps=20, warmup_steps=2, min_lr_ratio=0.1).resume(tmp_path / "ckpt")
    extended.fit()
    lrs = [h["lr"] for h in extended.history["train"]]
    assert len(lrs) == 20 and lrs[:10] == [h["lr"] for h in first.history["train"]]
    after_warmup = lrs[2:]
    assert all(b <= a for a, b in zip(after_warmup, after_warmup[1:]))
    assert lrs[-1] == pytest.approx(3e-3 * 0.1)


def test_a_finished_run_is_left_alone(tmp_path):
    first = make(max_steps=4, min_lr_ratio=0.1)
    first.out_dir = tmp_path / "ckpt"
    first.fit()
    written = (tmp_path / "ckpt" / STATE_JSON).stat().st_mtime_ns
    for _ in range(2):
        again = make(max_steps=4, min_lr_ratio=0.1).resume(tmp_path / "ckpt")
        again.out_dir = tmp_path / "ckpt"
        again.fit()
        assert [e["step"] for e in again.history["eval"]] == [4]
    assert (tmp_path / "ckpt" / STATE_JSON).stat().st_mtime_ns == written


@pytest.mark.parametrize("change", [dict(lr=1e-3), dict(max_grad_norm=0.5), dict(unfreeze={0: 1})],
                         ids=["lr", "max_grad_norm", "unfreeze"])
def test_resume_refuses_other_optimisation_settings_naming_them(tmp_path, change):
    make(max_steps=2, warmup_steps=1).save(tmp_path / "ckpt")
    name = next(iter(change))
    with pytest.raises(CheckpointError, match=rf"{name} .*\(asked: "):
        make(max_steps=2, warmup_steps=1, **change).resume(tmp_path / "ckpt")


def test_resume_refuses_what_would_train_nothing_or_move_the_decay(tmp_path):
    make(max_steps=2, warmup_steps=1).save(tmp_path / "ckpt")
    with pytest.raises(ConfigError, match="decays to 0 at step 2"):
        make(max_steps=4, warmup_steps=1).resume(tmp_path / "ckpt")  # extending it would train at learning rate 0
    with pytest.raises(CheckpointError, match="decays until step 2"):
        make(max_steps=4, warmup_steps=1, decay_steps=40).resume(tmp_path / "ckpt")


@pytest.mark.parametrize("bad", [dict(batch_size=30, grad_accum=4), dict(schedule="exp"), dict(precision="fp8"),
                                 dict(device="tpu"), dict(num_workers=-1)])
def test_impossible_configs_are_refused(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_progress_bar_redraws_at_most_about_once_a_second(capsys):
    """A redraw per step would flood a notebook's output channel on long runs (Jupyter drops output)."""
    trainer = make(max_steps=200, batch_size=8, progress=True)
    start = time.perf_counter()
    trainer.fit()
    elapsed = time.perf_counter() - start
    redraws = capsys.readouterr().err.count("train:")
    assert redraws <= elapsed + 3, f"{redraws} redraws in {elapsed:.1f} s"


# --- the clock: every second of the run is charged, waiting for the device included ------------------

def test_time_spent_waiting_at_a_read_is_charged(monkeypatch):
    """On a GPU the host only queues work and waits at the read: that wait is the GPU's time, and is charged."""
    real = distributed.sum_over_processes

    def wait_then_sum(tensor):
        time.sleep(0.1)  # stands in for the GPU finishing the window's queued kernels
        return real(tensor)
    monkeypatch.setattr(trainer_module.distributed, "sum_over_processes", wait_then_sum)
    trainer = make(max_steps=5, log_every=1)
    start = time.perf_counter()
    trainer.fit()
    wall = time.perf_counter() - start
    assert trainer.cost.seconds >= 5 * 0.1
    assert trainer.cost.seconds == pytest.approx(wall, rel=0.05)  # the windows cover the wall clock


def test_cpu_mfu_is_measured_against_the_cpu_peak():
    trainer = make(max_steps=5)
    trainer.fit()
    assert trainer.cost.mfu == pytest.approx(trainer.cost.flops / (trainer.cost.seconds * 50e9))
    assert "MFU" in trainer.cost.summary()


# --- a model that is only an nn.Module ---------------------------------------------------------

class Linear(torch.nn.Module):
    """No config, no layers: a loss is all the trainer needs."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, x, labels):
        logits = self.lin(x)
        return SimpleNamespace(loss=torch.nn.functional.cross_entropy(logits, labels), logits=logits)


def test_any_module_that_returns_a_loss_trains():
    torch.manual_seed(0)
    data = [{"x": torch.randn(4), "labels": torch.tensor(i % 2)} for i in range(64)]
    stack = lambda examples: {k: torch.stack([e[k] for e in examples]) for k in ("x", "labels")}  # noqa: E731
    trainer = Trainer(Linear(), data, stack, TrainConfig(max_steps=4, batch_size=8, progress=False))
    trainer.fit()
    weights = 4 * 2 + 2
    assert trainer.step == 4 and trainer.cost.tokens == 4 * 8  # one token per example
    assert 4 * 8 * 4 * weights <= trainer.cost.flops <= 4 * 8 * 6 * weights
    with pytest.raises(ConfigError, match="layers"):
        Trainer(Linear(), data, stack, TrainConfig(max_steps=4, batch_size=8, layer_decay=0.8, progress=False))
