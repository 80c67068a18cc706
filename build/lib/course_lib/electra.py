"""ELECTRA (Clark et al. 2020): pretraining by replaced-token detection instead of masked LM.

A small *generator* (a masked LM) fills the masked 15% of positions with tokens it samples; the
*discriminator* reads the result and labels every position original or replaced. Masked LM learns
from the 15% of positions it must fill; replaced-token detection gets a (binary) lesson at every
position, which is why ELECTRA learns more per FLOP. After pretraining the generator is thrown
away and the discriminator's encoder is fine-tuned like any BERT.

Here both are the course's BERT block: the discriminator has the course BERT's shape, the generator
fewer layers (the paper finds a generator a quarter to half the discriminator's size works best),
and the two share one embedding layer (the paper's §3.2), so the course's skip-gram vectors can
sit under both.
"""
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoTokenizer
from transformers.utils import ModelOutput

from . import checkpoints, costs, models, pretraining
from .costs import FlopsProfile
from .objectives import masked_lm_collator
from .runtime import seed_everything
from .trainer import Trainer, TrainConfig, forward_batches

RTD_WEIGHT = 50.0  # λ: the detection loss is far smaller than the generator's (Clark et al. 2020, Appendix A)


def replace_tokens(input_ids: torch.Tensor, mlm_labels: torch.Tensor, masked_logits: torch.Tensor,
                   masked_positions: torch.Tensor, rng: torch.Generator | None = None) -> tuple:
    """ELECTRA's corrupted input: masked positions filled with tokens *sampled* from the generator.

    ``masked_positions`` are the masked positions as indices into the flattened batch (the collator's
    ``masked_positions``), ``mlm_labels`` holds the original token there, and ``masked_logits``
    (n masked, vocab) are the generator's predictions at those positions, in that order. Returns
    (corrupted ids, replaced): replaced is 1 where the token now differs from the original — a
    sampled token that happens to be the original counts as original, as in the paper. Indexing by
    position, not by a boolean mask, keeps a GPU from waiting to count the masked tokens.
    """
    sampled = torch.multinomial(masked_logits.float().softmax(-1), 1, generator=rng).squeeze(-1)
    originals = mlm_labels.flatten().index_select(0, masked_positions)
    corrupted = input_ids.flatten().index_put((masked_positions,), sampled).view_as(input_ids)
    replaced = torch.zeros(input_ids.numel(), device=input_ids.device).index_put(
        (masked_positions,), (sampled != originals).float()).view_as(input_ids)
    return corrupted, replaced


def replaced_token_detection_loss(discriminator_logits: torch.Tensor, replaced: torch.Tensor,
                                  attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of "was this token replaced?" over every real (non-padding) position."""
    losses = F.binary_cross_entropy_with_logits(discriminator_logits, replaced, reduction="none")
    if attention_mask is None:
        return losses.mean()
    mask = attention_mask.float()
    return (losses * mask).sum() / mask.sum()


@dataclass
class ElectraOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None      # the discriminator's "replaced?" logit at every position
    corrupted: torch.Tensor | None = None   # the ids the discriminator read
    replaced: torch.Tensor | None = None    # 1 where the generator's sample differs from the original
    generator_loss: torch.Tensor | None = None
    detection_loss: torch.Tensor | None = None


class Electra(nn.Module):
    """Generator + discriminator, trained together: loss = generator MLM loss + λ · detection loss.

    No gradient flows from the discriminator into the generator (sampling is not differentiable);
    the generator learns by masked LM alone, as in the paper. The course trainer sees one model.
    """

    def __init__(self, generator, discriminator, rtd_weight: float = RTD_WEIGHT):
        super().__init__()
        self.generator, self.discriminator, self.rtd_weight = generator, discriminator, rtd_weight
        self.config = discriminator.config
        generator.model.embeddings = discriminator.model.embeddings  # one embedding layer for both
        generator.decoder.weight = discriminator.model.embeddings.tok_embeddings.weight  # and tied output

    def get_input_embeddings(self):
        return self.discriminator.get_input_embeddings()

    def save_pretrained(self, path, **kwargs):
        """What is kept of an ELECTRA: the discriminator's encoder, the part that is fine-tuned.

        A saved run holds its history and cost like any course checkpoint, but without the
        generator it cannot be resumed.
        """
        self.discriminator.model.save_pretrained(path, **kwargs)

    def flops_profile(self) -> FlopsProfile:
        """Both networks' FLOPs: what equal compute with masked LM has to count."""
        return costs.flops_profile(self.generator) + costs.flops_profile(self.discriminator)

    def forward(self, input_ids, labels, masked_positions, attention_mask=None) -> ElectraOutput:
        generated = self.generator(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                                   masked_positions=masked_positions)
        with torch.no_grad():
            corrupted, replaced = replace_tokens(input_ids, labels, generated.logits, masked_positions)
        logits = self.discriminator(input_ids=corrupted, attention_mask=attention_mask).logits.squeeze(-1)
        detection = replaced_token_detection_loss(logits, replaced, attention_mask)
        return ElectraOutput(loss=generated.loss + self.rtd_weight * detection, logits=logits, corrupted=corrupted,
                             replaced=replaced, generator_loss=generated.loss.detach(),
                             detection_loss=detection.detach())


def build(tokenizer, preset: str = "tiny", generator_layers: int = 1, block_size: int = 64) -> Electra:
    """An ELECTRA whose discriminator has the course BERT's ``preset`` shape, with a ``generator_layers``-layer generator."""
    shape = models.preset(preset)
    no_dropout = {name: 0.0 for name in pretraining.DROPOUT_FIELDS["bert"]}
    discriminator = models.build("bert", shape, tokenizer, task="detect", max_length=block_size, num_labels=1,
                                 **no_dropout)
    generator = pretraining.build_model("bert", {**shape, "layers": generator_layers}, tokenizer, block_size)
    return Electra(generator, discriminator)


def collator(tokenizer, rate: float = 0.15):
    """The generator's input: ``rate`` of the tokens masked, every one of them by [MASK] (no 80/10/10).

    BERT keeps 10% unchanged and 10% random so that it does not learn "only [MASK] matters"; here
    the discriminator, the part that is fine-tuned, never sees [MASK] at all.
    """
    return masked_lm_collator(tokenizer, rate, positions=True, mask_prob=1.0, random_prob=0.0)


def pretrain(out_dir, max_steps: int, tokenizer_from, embeddings_from=None, preset: str = "tiny",
             generator_layers: int = 1, corpus: str = "sst2", block_size: int = 64, **train_args) -> Trainer:
    """Pretrain an ELECTRA on ``corpus``; save its discriminator's encoder in ``out_dir`` (None: do not save).

    ``tokenizer_from``: a course checkpoint whose tokenizer to use, so ELECTRA and the masked LM it
    is compared with read the same tokens. ``embeddings_from``: a checkpoint whose embedding layer
    (the course BERT's skip-gram vectors) is copied in and kept frozen, as in the course BERT's
    second stage. ``train_args`` are ``TrainConfig`` fields.
    """
    tokenizer = AutoTokenizer.from_pretrained(checkpoints.require_model(tokenizer_from))
    seed_everything(train_args.get("seed", 0))
    model = build(tokenizer, preset, generator_layers, block_size)
    if embeddings_from is not None:
        vectors = AutoModel.from_pretrained(checkpoints.require_model(embeddings_from)).get_input_embeddings()
        model.get_input_embeddings().load_state_dict(vectors.state_dict())
    train_blocks, eval_blocks = pretraining.corpus_blocks(tokenizer, corpus, block_size)
    config = TrainConfig(max_steps=max_steps, freeze_embeddings=embeddings_from is not None, **train_args)
    run = {"arch": "electra", "corpus": corpus, "preset": preset, "generator_layers": generator_layers,
           "block_size": block_size}
    trainer = Trainer(model, train_blocks, collator(tokenizer), config, eval_data=eval_blocks, tokenizer=tokenizer,
                      out_dir=Path(out_dir) if out_dir else None, run=run)
    trainer.fit()
    return trainer


def vector_similarity(encoder, tokenizer, texts: list, max_length: int = 64) -> tuple:
    """(mean cosine between sentence vectors, between token vectors) of ``encoder``'s last layer on ``texts``.

    A check for collapse: when every token comes out pointing the same way, a fine-tuned classifier
    has nothing to tell sentences apart by. Sentence vectors are mean-pooled, as the course's
    classifiers pool them; token vectors are every real token of every text.
    """
    def collate(chunk):
        return tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")

    [(batch, out)] = forward_batches(encoder, texts, collate, batch_size=len(texts))
    hidden, real = out.last_hidden_state.float(), batch["attention_mask"].bool()
    sentences = torch.stack([h[m].mean(0) for h, m in zip(hidden, real)])
    return _mean_cosine(sentences), _mean_cosine(hidden[real])


def _mean_cosine(vectors: torch.Tensor) -> float:
    """Mean cosine similarity over all pairs of distinct rows."""
    unit = F.normalize(vectors, dim=-1)
    n = len(unit)
    return float(((unit @ unit.T).sum() - n) / (n * (n - 1)))
