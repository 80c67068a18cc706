"""BERT's family: what each successor changed, and its size computed from its real configuration.

Each member is built from its ``transformers`` configuration at the published size, on PyTorch's
meta device: shapes only, no memory, so an 11-billion-parameter T5 costs nothing to count. The
counts are therefore computed, not quoted; the task scores are quoted, each with its source.
"""
from dataclasses import dataclass

import torch
from transformers import (AlbertConfig, AlbertModel, BartConfig, BartModel, BertConfig, BertModel, DistilBertConfig,
                          DistilBertModel, ElectraConfig, ElectraModel, ModernBertConfig, ModernBertModel,
                          RobertaConfig, RobertaModel, T5Config, T5Model)


@dataclass(frozen=True)
class Member:
    name: str
    year: int
    objective: str
    fixes: str                # what it changes about BERT, and why
    model_class: type
    config: object
    score: str                # a published figure, with what it measures
    source: str

    def parameters(self) -> int:
        """Parameters of the encoder (or encoder-decoder) without a task head, counted on the meta device."""
        with torch.device("meta"):
            model = self.model_class(self.config)
        return sum(p.numel() for p in model.parameters())


FAMILY = [
    Member("BERT-base", 2018, "masked LM + next-sentence prediction", "the starting point",
           BertModel, BertConfig(), "SST-2 dev 92.7",
           "as reported by Sanh et al. 2019, Table 1 (median of 5 runs)"),
    Member("RoBERTa-large", 2019, "masked LM, masks redrawn every epoch",
           "BERT was undertrained: 10x the data, bigger batches, longer training, no next-sentence task",
           RobertaModel, RobertaConfig(vocab_size=50265, hidden_size=1024, num_hidden_layers=24,
                                       num_attention_heads=16, intermediate_size=4096, max_position_embeddings=514,
                                       type_vocab_size=1),
           "SST-2 dev 96.4", "Liu et al. 2019 (fairseq RoBERTa README, GLUE dev, single task)"),
    Member("ALBERT-xxlarge", 2019, "masked LM + sentence-order prediction",
           "fewer parameters: one set of layer weights shared by all 12 layers, a factorised 128-wide embedding",
           AlbertModel, AlbertConfig(), "SST-2 dev 96.9",
           "Lan et al. 2019 (google-research/albert README, ALBERT 1.5M steps, GLUE dev)"),
    Member("DistilBERT", 2019, "distillation from BERT-base (soft labels + masked LM + hidden-state cosine)",
           "a smaller, faster student: 6 layers instead of 12, taught by the full model",
           DistilBertModel, DistilBertConfig(), "SST-2 dev 91.3", "Sanh et al. 2019, Table 1 (median of 5 runs)"),
    Member("ELECTRA-large", 2020, "replaced-token detection (a small generator fills masks, the model spots them)",
           "masked LM learns from 15% of positions; replaced-token detection learns from all of them",
           ElectraModel, ElectraConfig(vocab_size=30522, embedding_size=1024, hidden_size=1024,
                                       num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
           "SST-2 dev 96.9", "Clark et al. 2020 (google-research/electra README, median over many seeds)"),
    Member("BART-large", 2019, "denoising: reconstruct text from a corrupted copy (spans masked, sentences shuffled)",
           "an encoder-decoder, so the same model can also generate text",
           BartModel, BartConfig(), "SST-2 dev 96.6", "Lewis et al. 2019 (fairseq BART README, GLUE dev)"),
    Member("T5-11B", 2019, "span corruption: predict the dropped spans, every task as text to text",
           "one model and one loss for every task: the input and the answer are both text",
           T5Model, T5Config(vocab_size=32128, d_model=1024, d_kv=128, d_ff=65536, num_layers=24, num_heads=128),
           "GLUE test average 90.3", "Raffel et al. 2019, Table 14"),
    Member("ModernBERT-base", 2024, "masked LM (30% masking) on 2 trillion tokens, code included",
           "a 2018 design brought up to date: rotary positions, GeGLU, pre-norm, long context, no biases",
           ModernBertModel, ModernBertConfig(), "GLUE dev average 88.4", "Warner et al. 2024, Table 1"),
]
