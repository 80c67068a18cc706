"""Knowledge distillation (Hinton et al. 2015; DistilBERT, TinyBERT, MiniLM): a small *student*
learns to match a large *teacher*'s output distribution.

The teacher's probabilities, softened by a temperature T, say more than a label does — how sure it
is, and which wrong answer it finds nearly right ("dark knowledge") — and the teacher can label as
many unlabelled sentences as there are. The student then runs many times faster at inference.
"""
import hashlib
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from . import costs
from .data import Split
from .errors import ConfigError, DataError
from .finetune import (MINILM, finetune, learning_rate, load_classifier, logits, match_tokenizer, padding_collator,
                       predict, recipe)
from .pretraining import course_checkpoint
from .runtime import seed_everything
from .trainer import Trainer, TrainConfig


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


class Student(nn.Module):
    """A classifier trained on a teacher's logits: the course trainer sees one model with a loss.

    Each example carries ``teacher_logits``; ``labels`` (the teacher's choice) are only counted.
    """

    def __init__(self, classifier, temperature: float = 2.0):
        super().__init__()
        self.classifier, self.temperature, self.config = classifier, temperature, classifier.config

    def flops_profile(self):
        """The classifier's FLOPs: the teacher's logits come with the data, at no cost here."""
        return costs.flops_profile(self.classifier)

    def forward(self, input_ids, attention_mask, teacher_logits, labels=None) -> SequenceClassifierOutput:
        out = self.classifier(input_ids=input_ids, attention_mask=attention_mask).logits
        return SequenceClassifierOutput(loss=distillation_loss(out, teacher_logits, temperature=self.temperature),
                                        logits=out)


def soft_examples(tokenizer, texts: list, teacher_logits: torch.Tensor, max_length: int = 64) -> list:
    """Encoded ``texts``, each with the teacher's logits for it (and its choice as the label)."""
    enc = tokenizer(texts, truncation=True, max_length=min(max_length, tokenizer.model_max_length))
    return [{"input_ids": ids, "attention_mask": mask, "teacher_logits": t.tolist(), "labels": int(t.argmax())}
            for ids, mask, t in zip(enc["input_ids"], enc["attention_mask"], teacher_logits)]


def distill(classifier, tokenizer, texts: list, teacher_logits: torch.Tensor, config: TrainConfig,
            temperature: float = 2.0, max_length: int = 64) -> Trainer:
    """Train ``classifier`` to match ``teacher_logits`` on ``texts`` (no gold labels needed)."""
    match_tokenizer(classifier, tokenizer)
    trainer = Trainer(Student(classifier, temperature), soft_examples(tokenizer, texts, teacher_logits, max_length),
                      padding_collator(tokenizer), config)
    trainer.fit()
    return trainer


def sentences_per_second(model, tokenizer, texts: list, batch_size: int = 64, repeats: int = 3) -> float:
    """Inference throughput on ``texts`` (best of ``repeats`` passes, after one warm-up pass)."""
    logits(model, tokenizer, texts[:batch_size], batch_size)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        logits(model, tokenizer, texts, batch_size)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


# --- the experiment: MiniLM teaches the course's tiny BERT ------------------------------------

STUDENT_LR = learning_rate("course")  # the course BERT's fine-tuning rate, whatever its student is taught by
ARMS = ("labels only", "distilled, same sentences", "distilled, all sentences")


def train_teacher(train: Split, dev: Split, epochs: int = 1, seed: int = 0) -> tuple:
    """(model, tokenizer, dev accuracy): the pretrained MiniLM fine-tuned on ``train`` for ``epochs`` passes."""
    seed_everything(seed)
    model, tokenizer = load_classifier(MINILM)
    config = recipe(len(train), learning_rate(MINILM), seed, epochs=epochs, progress=True)
    trainer = finetune(model, tokenizer, train, dev, config)
    return model, tokenizer, trainer.history["eval"][-1]["accuracy"]


def save_teacher(path, train_logits: torch.Tensor, dev_logits: torch.Tensor, texts: list, info: dict) -> None:
    """The teacher's logits for every training sentence (and dev), with a digest of the sentences."""
    meta = {"texts_sha256": _digest(texts), **{k: json.dumps(v) for k, v in info.items()}}
    save_file({"train": train_logits.contiguous(), "dev": dev_logits.contiguous()}, str(path), metadata=meta)


def load_teacher(path, texts: list) -> tuple:
    """(train logits, dev logits, info) saved by ``save_teacher``, checked against ``texts``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing: run `python benchmarks/distillation.py` to train the teacher")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in ("train", "dev")}
    if meta.get("texts_sha256") != _digest(texts):
        raise DataError(f"{path} holds a teacher's logits for other sentences than these SST-2 training sentences "
                        "(another data source?): rerun `python benchmarks/distillation.py`")
    info = {k: json.loads(v) for k, v in meta.items() if k != "texts_sha256"}
    return tensors["train"], tensors["dev"], info


def _digest(texts: list) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


def run(arm: str, sst2, teacher_logits: torch.Tensor, labels: int = 500, seed: int = 0,
        sentences: int | None = None) -> dict:
    """One student run: the course BERT trained on ``labels`` gold labels, or distilled.

    ``"distilled, same sentences"``: the teacher's soft labels on the same ``labels`` sentences
    (soft against hard labels, nothing else changed); ``"distilled, all sentences"``: soft labels
    on ``sentences`` training sentences drawn with ``seed`` (default: all 67,349). Every arm trains
    by the label-budget recipe (three passes over its sentences; one over all of them) and is scored on SST-2 dev.
    """
    if arm not in ARMS:
        raise ConfigError(f"unknown arm {arm!r}; choose from {ARMS}")
    seed_everything(seed)
    start = time.perf_counter()
    model, tokenizer = load_classifier(course_checkpoint("bert"))
    train, dev = sst2["train"], sst2["dev"]
    gold = train.take(labels, seed)
    if arm == "labels only":
        trainer = finetune(model, tokenizer, gold, dev, recipe(labels, STUDENT_LR, seed))
    else:
        if arm == "distilled, same sentences":
            texts, config = gold.texts, recipe(labels, STUDENT_LR, seed)
        else:  # one pass: there are a hundred times more sentences than labels
            texts = train.take(sentences or len(train), seed).texts
            config = recipe(len(texts), STUDENT_LR, seed, epochs=1)
        row = {text: i for i, text in enumerate(train.texts)}
        trainer = distill(model, tokenizer, texts, teacher_logits[[row[t] for t in texts]], config)
    correct = sum(p == y for p, y in zip(predict(model, tokenizer, dev.texts), dev.labels))
    return {"arm": arm, "labels": labels, "seed": seed, "sentences": len(trainer.train_data), "steps": trainer.step,
            "dev": correct / len(dev), "flops": trainer.cost.flops, "seconds": time.perf_counter() - start}
