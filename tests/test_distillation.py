"""The distillation and replaced-token-detection losses, checked against their definitions."""
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import distillation
from course_lib.trainer import IGNORE


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


def test_replace_tokens_fills_only_masked_positions_and_marks_real_replacements():
    input_ids = torch.tensor([[5, 1, 7, 1]])           # 1 = [MASK]
    mlm_labels = torch.tensor([[IGNORE, 3, IGNORE, 4]])  # originals 3 and 4 were masked
    logits = torch.full((1, 4, 10), -1e9)
    logits[0, 1, 3] = 0.0                               # the generator is sure: position 1 -> 3 (the original)
    logits[0, 3, 9] = 0.0                               # position 3 -> 9 (a replacement)
    corrupted, replaced = distillation.replace_tokens(input_ids, mlm_labels, logits)
    assert corrupted.tolist() == [[5, 3, 7, 9]]
    assert replaced.tolist() == [[0.0, 0.0, 0.0, 1.0]]  # a sampled original counts as original


def test_replaced_token_detection_loss_ignores_padding():
    logits = torch.tensor([[2.0, -2.0, 50.0]])
    replaced = torch.tensor([[1.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0]])                     # the confident wrong answer sits on padding
    want = -(math.log(torch.sigmoid(torch.tensor(2.0)).item()) + math.log(torch.sigmoid(torch.tensor(2.0)).item())) / 2
    assert distillation.replaced_token_detection_loss(logits, replaced, mask).item() == pytest.approx(want, rel=1e-5)
    assert distillation.replaced_token_detection_loss(logits, replaced).item() > 10  # without the mask it counts
