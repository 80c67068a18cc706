"""Notebook 09's graded checks accept a right answer and explain typical wrong ones."""
import pytest
import torch.nn.functional as F

from course_lib import distillation, electra
from course_lib.exercises import CheckFailed, grade
from course_lib.exercises import beyond as checks


def test_detection_loss_check():
    checks.check_detection_loss(electra.replaced_token_detection_loss)
    with pytest.raises(CheckFailed, match="padding"):
        checks.check_detection_loss(lambda logits, replaced, mask: electra.replaced_token_detection_loss(logits,
                                                                                                        replaced))
    with pytest.raises(CheckFailed, match="wrong way round"):
        checks.check_detection_loss(lambda logits, replaced, mask: electra.replaced_token_detection_loss(
            logits, 1 - replaced, mask))
    with pytest.raises(CheckFailed, match="0-dimensional"):
        checks.check_detection_loss(lambda logits, replaced, mask: F.binary_cross_entropy_with_logits(
            logits, replaced, reduction="none"))


def test_distillation_loss_check():
    checks.check_distillation_loss(lambda s, t, temperature: distillation.distillation_loss(s, t,
                                                                                             temperature=temperature))
    with pytest.raises(CheckFailed, match="T²"):
        checks.check_distillation_loss(lambda s, t, temperature: F.kl_div(
            F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1), log_target=True,
            reduction="batchmean"))
    with pytest.raises(CheckFailed, match="wrong way round"):
        checks.check_distillation_loss(lambda s, t, temperature: distillation.distillation_loss(
            t, s, temperature=temperature))
    with pytest.raises(CheckFailed, match="divide both"):
        checks.check_distillation_loss(lambda s, t, temperature: temperature ** 2 * distillation.distillation_loss(
            s, t, temperature=1.0))


def test_factorized_embeddings_check():
    checks.check_factorized_embeddings(lambda v, h, e: v * h if e is None else v * e + e * h)
    with pytest.raises(CheckFailed, match="projection"):
        checks.check_factorized_embeddings(lambda v, h, e: v * h if e is None else v * e)
    with pytest.raises(CheckFailed, match="V x H"):
        checks.check_factorized_embeddings(lambda v, h, e: v * h)


def test_an_unattempted_exercise_says_so():
    def untouched(*args):
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="not attempted"):
        grade("Exercise 1", checks.check_detection_loss, untouched)
