"""Fine-tuning a sequence classifier: encode a labelled split, train with the course trainer, score it.

Used by the demo, the CLI's ``finetune`` and ``evaluate``, and the fine-tuning notebooks.
"""
import torch

from .data import Split
from .trainer import Trainer, TrainConfig, accuracy


def match_tokenizer(model, tokenizer) -> None:
    """Make model and tokenizer agree on padding and on the longest input the model has positions for."""
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id  # GPT-style classifiers need it to find the last token
    tokenizer.model_max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)


def encode(tokenizer, split: Split, max_length: int = 64) -> list:
    """Tokenize every text once; examples are dicts the collator pads into a batch.

    Texts are cut at ``max_length`` tokens, or earlier if the tokenizer's model has fewer positions.
    """
    enc = tokenizer(split.texts, truncation=True, max_length=min(max_length, tokenizer.model_max_length))
    return [{"input_ids": ids, "attention_mask": mask, "labels": label}
            for ids, mask, label in zip(enc["input_ids"], enc["attention_mask"], split.labels)]


def padding_collator(tokenizer):
    """Pad each batch only to its own longest sentence (dynamic padding: no wasted FLOPs)."""
    def collate(examples):
        return tokenizer.pad(examples, return_tensors="pt")
    return collate


def finetune(model, tokenizer, train: Split, dev: Split, config: TrainConfig, max_length: int = 64,
             out_dir=None) -> Trainer:
    """Fine-tune ``model`` on ``train``, evaluating on ``dev``; returns the trainer (history, cost)."""
    match_tokenizer(model, tokenizer)
    trainer = Trainer(model, encode(tokenizer, train, max_length), padding_collator(tokenizer), config,
                      eval_data=encode(tokenizer, dev, max_length), accuracy_fn=accuracy,
                      out_dir=out_dir, tokenizer=tokenizer)
    trainer.fit()
    return trainer


@torch.no_grad()
def predict(model, tokenizer, texts: list, batch_size: int = 64, max_length: int = 64) -> list:
    """Predicted label ids for raw ``texts``."""
    model.eval()
    device = next(model.parameters()).device
    predictions = []
    for i in range(0, len(texts), batch_size):
        batch = tokenizer(texts[i:i + batch_size], truncation=True, padding=True,
                          max_length=min(max_length, tokenizer.model_max_length),
                          return_tensors="pt").to(device)
        predictions += model(**batch).logits.argmax(-1).tolist()
    return predictions
