"""Checks for notebook 09 (Beyond BERT)."""
import math

import torch

from .. import distillation, electra
from . import expect, expect_number


def _close(a, b) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-4, abs_tol=1e-6)


def check_detection_loss(detection_loss) -> None:
    """``detection_loss(logits, replaced, attention_mask)``: ELECTRA's loss, a mean over real positions."""
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0], [-2.0, 0.0, 1.0, 4.0]])
    replaced = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    answer = detection_loss(logits, replaced, mask)
    expect(torch.is_tensor(answer) and answer.dim() == 0, "return one number as a 0-dimensional tensor (a mean)")
    want = electra.replaced_token_detection_loss(logits, replaced, mask)
    expect(not _close(answer, electra.replaced_token_detection_loss(logits, replaced)),
           "the last position of the second row is padding: leave it out of the mean (multiply the per-position "
           "losses by the mask and divide by the mask's sum)")
    flipped = electra.replaced_token_detection_loss(logits, 1 - replaced, mask)
    expect(not _close(answer, flipped), "the target is 1 where a token was *replaced*: your labels are the wrong "
                                        "way round")
    expect(_close(answer, want), f"expected {float(want):.4f}, got {float(answer):.4f}: a binary cross-entropy on "
                                 "the logits (sigmoid inside, e.g. F.binary_cross_entropy_with_logits), one term per "
                                 "real position, averaged")
    print(f"Correct: {float(want):.4f}. Every real position is a lesson, not only the masked 15%.")


def check_distillation_loss(soft_loss) -> None:
    """``soft_loss(student_logits, teacher_logits, temperature)``: T² · KL(teacher_T || student_T), batch mean."""
    student = torch.tensor([[1.0, 0.0, -1.0], [0.2, 0.4, 0.0]])
    teacher = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, -1.0]])
    t = 4.0
    answer = soft_loss(student, teacher, t)
    expect(torch.is_tensor(answer) and answer.dim() == 0, "return one number as a 0-dimensional tensor")
    want = distillation.distillation_loss(student, teacher, temperature=t)
    expect(not _close(answer, want / t ** 2), "multiply by T²: softened distributions give gradients 1/T² as "
                                              "large, and T² brings them back (Hinton et al. 2015, §2)")
    expect(not _close(answer, distillation.distillation_loss(teacher, student, temperature=t)),
           "the KL divergence is the wrong way round: it is KL(teacher || student), the teacher's distribution "
           "weighting the log-ratio")
    expect(not _close(answer, distillation.distillation_loss(student, teacher, temperature=1.0) * t ** 2),
           "divide both the student's and the teacher's logits by T before the softmax")
    expect(_close(answer, want), f"expected {float(want):.4f}, got {float(answer):.4f}: T² · sum over classes of "
                                 "p_teacher · (log p_teacher − log p_student), averaged over the batch, both softmaxes "
                                 "at temperature T")
    print(f"Correct: {float(want):.4f} at T = {t:g}.")


def check_factorized_embeddings(embedding_parameters) -> None:
    """``embedding_parameters(vocab, hidden, embedding)``: ALBERT's V·E + E·H (a plain V·H when E is None)."""
    vocab, hidden = 30000, 4096
    answer = embedding_parameters(vocab, hidden, 128)
    expect_number(answer, "a number of parameters")
    expect(answer != vocab * hidden, "that is BERT's V x H; ALBERT first maps each token to E = 128 numbers, then "
                                     "projects E up to H")
    expect(answer != vocab * 128, "you left out the projection from E up to H (an E x H matrix)")
    expect(answer == vocab * 128 + 128 * hidden, f"expected {vocab * 128 + 128 * hidden:,}, got {answer:,}")
    expect(embedding_parameters(vocab, hidden, None) == vocab * hidden,
           "with embedding=None there is no factorisation: V x H")
    print(f"Correct: {answer:,} instead of {vocab * hidden:,} ({vocab * hidden / answer:.0f}x fewer).")
