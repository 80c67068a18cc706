"""Two losses that BERT's successors train with besides masked LM.

- Knowledge distillation (Hinton et al. 2015; DistilBERT, TinyBERT, MiniLM): a small *student*
  learns to match a large *teacher*'s output distribution, softened by a temperature T so that
  the teacher's "dark knowledge" — how much it prefers one wrong answer over another — is visible.
- Replaced-token detection (ELECTRA, Clark et al. 2020): a small generator fills masked positions
  with plausible tokens, and the model labels every position original or replaced — a binary task
  on all positions, where masked LM learns from the masked 15% only.
"""
import torch
import torch.nn.functional as F

from .trainer import IGNORE


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None = None,
                      temperature: float = 2.0, alpha: float = 1.0) -> torch.Tensor:
    """alpha · T² · KL(teacher_T || student_T) + (1 - alpha) · cross-entropy on ``labels``.

    Both distributions are softmaxes at temperature T. The T² keeps the soft term's gradients the
    same size whatever T is (Hinton et al. 2015, §2). Without labels (unlabelled text) only the
    soft term is used, whatever ``alpha`` says.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                    F.log_softmax(teacher_logits / temperature, dim=-1), log_target=True,
                    reduction="batchmean") * temperature ** 2
    if labels is None:
        return soft
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


def replace_tokens(input_ids: torch.Tensor, mlm_labels: torch.Tensor, generator_logits: torch.Tensor,
                   rng: torch.Generator | None = None) -> tuple:
    """ELECTRA's corrupted input: masked positions filled with tokens *sampled* from the generator.

    ``mlm_labels`` holds the original token where a position was masked, ``IGNORE`` elsewhere;
    ``generator_logits`` (batch, length, vocab) are the generator's predictions. Returns
    (corrupted ids, replaced): replaced is 1 where the token now differs from the original — a
    sampled token that happens to be the original counts as original, as in the paper.
    """
    masked = mlm_labels != IGNORE
    sampled = torch.multinomial(generator_logits[masked].float().softmax(-1), 1, generator=rng).squeeze(-1)
    corrupted = input_ids.clone()
    originals = mlm_labels[masked]
    corrupted[masked] = sampled
    replaced = torch.zeros_like(input_ids, dtype=torch.float)
    replaced[masked] = (sampled != originals).float()
    return corrupted, replaced


def replaced_token_detection_loss(discriminator_logits: torch.Tensor, replaced: torch.Tensor,
                                  attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of "was this token replaced?" over every real (non-padding) position."""
    losses = F.binary_cross_entropy_with_logits(discriminator_logits, replaced, reduction="none")
    if attention_mask is None:
        return losses.mean()
    mask = attention_mask.float()
    return (losses * mask).sum() / mask.sum()
