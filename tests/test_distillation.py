"""Distillation: the loss against its definition, the student wrapper, the saved teacher."""
import pytest
import torch
import torch.nn.functional as F

from course_lib import distillation, finetune
from course_lib.errors import DataError
from course_lib.trainer import TrainConfig


def test_distillation_loss_is_zero_when_the_student_matches_the_teacher():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    assert distillation.distillation_loss(logits, logits.clone()).item() == pytest.approx(0.0, abs=1e-7)


def test_distillation_loss_is_t_squared_kl_of_the_softened_distributions():
    student, teacher, t = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[3.0, 1.0, 0.0]]), 4.0
    p, q = (teacher / t).softmax(-1), (student / t).softmax(-1)
    kl = float((p * (p.log() - q.log())).sum())
    assert distillation.distillation_loss(student, teacher, temperature=t).item() == pytest.approx(t * t * kl, rel=1e-5)


def test_distillation_loss_mixes_in_the_labels_with_alpha():
    student, teacher, labels = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([0])
    soft = distillation.distillation_loss(student, teacher)
    hard = F.cross_entropy(student, labels)
    mixed = distillation.distillation_loss(student, teacher, labels, alpha=0.3)
    assert mixed.item() == pytest.approx(0.3 * soft.item() + 0.7 * hard.item(), rel=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        distillation.distillation_loss(student, teacher, temperature=0)


TEXTS = ["a delight from start to finish", "dull", "i loved every minute of this warm and funny story", "thin plot",
         "wooden acting and a thin plot in a film that never once comes alive", "warm", "a mess", "funny"] * 4


@pytest.fixture(scope="module")
def student(pretrain_tiny):
    path = pretrain_tiny("bert", TEXTS, vocab_size=120, block_size=16)
    return finetune.load_classifier(path)


def test_logits_come_back_in_the_order_of_the_texts(student):
    model, tokenizer = student
    batched = finetune.logits(model, tokenizer, TEXTS[:8], batch_size=3)  # batches sorted by length inside
    one_by_one = torch.cat([finetune.logits(model, tokenizer, [t]) for t in TEXTS[:8]])
    assert torch.allclose(batched, one_by_one, atol=1e-5)
    assert finetune.predict(model, tokenizer, TEXTS[:8], batch_size=3) == one_by_one.argmax(-1).tolist()


def test_the_student_learns_to_agree_with_its_teacher(student):
    model, tokenizer = student
    teacher = torch.tensor([[2.0, -2.0] if len(t) < 20 else [-2.0, 2.0] for t in TEXTS])  # "short is negative"
    before = distillation.distillation_loss(finetune.logits(model, tokenizer, TEXTS), teacher).item()
    config = TrainConfig(max_steps=40, batch_size=8, lr=3e-3, seed=0, progress=False)
    trainer = distillation.distill(model, tokenizer, TEXTS, teacher, config)
    after = distillation.distillation_loss(finetune.logits(model, tokenizer, TEXTS), teacher).item()
    assert after < before / 2
    assert finetune.predict(model, tokenizer, TEXTS) == teacher.argmax(-1).tolist()
    assert trainer.cost.flops > 0


def test_a_saved_teacher_is_checked_against_the_sentences(tmp_path):
    texts = ["good", "bad", "fine"]
    path = tmp_path / "teacher.safetensors"
    with pytest.raises(DataError, match="benchmarks/distillation.py"):
        distillation.load_teacher(path, texts)
    distillation.save_teacher(path, torch.randn(3, 2), torch.randn(2, 2), texts, {"labels": 3, "dev_accuracy": 0.5})
    train, dev, info = distillation.load_teacher(path, texts)
    assert train.shape == (3, 2) and dev.shape == (2, 2) and info == {"labels": 3, "dev_accuracy": 0.5}
    with pytest.raises(DataError, match="other sentences"):
        distillation.load_teacher(path, ["good", "bad", "awful"])
