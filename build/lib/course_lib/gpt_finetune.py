"""Fine-tuning a GPT to classify sentences, GPT-1's way (Radford et al. 2018, sections 3.2-3.3).

A decoder reads left to right, so the input is rewritten into one token sequence whose *last*
token has seen everything: ``<start> text <extract>`` (a pair: ``<start> a <delim> b <extract>``).
A linear layer W_y reads the final hidden state at ``<extract>``. The three tokens are new: they get
rows in the embedding matrix, which fine-tuning trains with W_y. The loss keeps the pretraining
objective on the labelled sentences as an auxiliary term, ``L = L_task + λ·L_LM`` with λ = 0.5.
The other way, prompting without changing a weight, is ``prompting``.
"""
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoTokenizer, GPT2ForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

from . import costs, pretraining
from .costs import IGNORE
from .data import Split
from .errors import ConfigError
from .finetune import FINETUNE_DROPOUT, learning_rate, match_tokenizer, recipe
from .runtime import seed_everything
from .trainer import Trainer, forward_batches

# --- GPT-1's input transformation -----------------------------------------------------------------

START, DELIMITER, EXTRACT = "<|start|>", "<|delim|>", "<|extract|>"  # the paper's <s>, $ and <e>
AUX_LM_WEIGHT = 0.5  # GPT-1's λ (section 4.1, fine-tuning details)


def add_gpt1_tokens(tokenizer) -> dict:
    """Add GPT-1's start, delimiter and extract tokens to ``tokenizer``; {token: id}.

    They must be *special* tokens: a plain added string could be split into pieces or merged with
    the text around it, and the model must find the extract token at one known id.
    """
    tokenizer.add_tokens([START, DELIMITER, EXTRACT], special_tokens=True)
    return {token: tokenizer.convert_tokens_to_ids(token) for token in (START, DELIMITER, EXTRACT)}


def transform(tokenizer, text: str, second: str | None = None, max_length: int = 64) -> list:
    """GPT-1's input for one example: ``<start> text <extract>``, or ``<start> a <delim> b <extract>``.

    Too long a text is cut at its end (the longer of a pair first), never the extract token: the
    classifier reads the last position, so it must hold ``<extract>`` whatever the length.
    """
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in (START, DELIMITER, EXTRACT)}
    if tokenizer.unk_token_id in ids.values() or None in ids.values():
        raise ConfigError("the tokenizer lacks GPT-1's tokens: call add_gpt1_tokens(tokenizer) first")
    a = tokenizer(text, add_special_tokens=False)["input_ids"]
    if second is None:
        return [ids[START]] + a[:max_length - 2] + [ids[EXTRACT]]
    b = tokenizer(second, add_special_tokens=False)["input_ids"]
    while len(a) + len(b) > max_length - 3:
        (a if len(a) >= len(b) else b).pop()
    return [ids[START]] + a + [ids[DELIMITER]] + b + [ids[EXTRACT]]


def encode(tokenizer, split: Split, max_length: int = 64) -> list:
    """Every sentence of ``split`` transformed once: dicts the padding collator batches."""
    return [{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": label}
            for ids, label in ((transform(tokenizer, text, max_length=max_length), label)
                               for text, label in zip(split.texts, split.labels))]


def collator(tokenizer, special_ids: list, extract_id: int):
    """Pad GPT-1-transformed examples into a batch, and find on the CPU where the model will read it.

    ``extract_positions`` (the extract token of each row) and ``lm_positions`` (the auxiliary LM's
    targets, as indices into the flattened (batch, length - 1) grid) are what ``GPT1Classifier`` would
    otherwise find with boolean masks on the GPU, waiting for it every step to count them.
    """
    def collate(examples: list) -> dict:
        batch = tokenizer.pad(examples, return_tensors="pt")
        return {**batch, "extract_positions": find_extract(batch["input_ids"], extract_id),
                "lm_positions": lm_positions(batch["input_ids"], batch["attention_mask"], special_ids)}
    return collate


def model_collator(model, tokenizer):
    """``collator`` for ``model``'s own GPT-1 tokens."""
    return collator(tokenizer, model.config.gpt1_token_ids, model.config.extract_token_id)


# --- the model: a classifier on the extract token, plus the auxiliary language model ---------------

def find_extract(input_ids: torch.Tensor, extract_id: int) -> torch.Tensor:
    """Index of the extract token in each row (the first one, should a row hold several)."""
    found = input_ids == extract_id
    if not found.any(-1).all():
        raise ValueError("a row has no extract token: build the inputs with transform()")
    return found.int().argmax(-1)


def lm_targets(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list) -> torch.Tensor:
    """Next-token targets for the auxiliary LM: the input itself, IGNORE at padding and GPT-1's tokens.

    The new tokens are not language: predicting ``<extract>`` after every sentence would teach the
    model nothing about text, and padding is not there at all.
    """
    targets = input_ids.masked_fill(attention_mask == 0, IGNORE)
    return targets.masked_fill(torch.isin(input_ids, torch.tensor(special_ids, device=input_ids.device)), IGNORE)


def causal_lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of position t predicting target t+1 (the shift a causal LM needs)."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), targets[:, 1:].flatten(), ignore_index=IGNORE)


def lm_positions(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list) -> torch.Tensor:
    """Where the auxiliary LM has a target: indices into the flattened (batch, length - 1) grid of shifted targets."""
    return (lm_targets(input_ids, attention_mask, special_ids)[:, 1:].flatten() != IGNORE).nonzero().squeeze(1)


class GPT1Classifier(GPT2ForSequenceClassification):
    """``GPT2ForSequenceClassification`` with GPT-1's fine-tuning: W_y on the extract token, L = L_task + λ·L_LM.

    transformers' class already reads the last non-padding token, which the transformation makes
    the extract token; this one finds it by its id, adds GPT-1's classifier dropout, and adds the
    language-modelling loss through the pretrained output layer (GPT-2's LM head *is* the input
    embedding matrix, tied, so ``hidden @ wte.T`` is exactly the pretrained next-token predictor).
    Its configuration carries ``lm_weight`` (λ), ``extract_token_id`` and ``gpt1_token_ids``.
    Batches from ``collator`` say where to read; any other batch is searched here instead.
    """

    def __init__(self, config):
        super().__init__(config)
        self.dropout = torch.nn.Dropout(config.summary_first_dropout)

    def forward(self, input_ids, attention_mask=None, labels=None, extract_positions=None, lm_positions=None,
                **kwargs):
        attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        if extract_positions is None:
            extract_positions = find_extract(input_ids, self.config.extract_token_id)
        hidden = self.transformer(input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(len(input_ids), device=input_ids.device)
        logits = self.score(self.dropout(hidden[rows, extract_positions]))
        loss = task_loss = lm_loss = None
        if labels is not None:
            loss = task_loss = F.cross_entropy(logits, labels)
            if self.config.lm_weight or not self.training:  # training with λ = 0 skips it; evaluation reports it
                lm_loss = self.lm_loss(hidden, input_ids, attention_mask, lm_positions)
                loss = task_loss + self.config.lm_weight * lm_loss
        return GPT1Output(loss=loss, logits=logits, task_loss=task_loss, lm_loss=lm_loss)

    def lm_loss(self, hidden, input_ids, attention_mask, positions=None) -> torch.Tensor:
        """``causal_lm_loss`` through the tied output layer, computed only where there is a target.

        The same number as the full (batch, length, vocabulary) logits would give, without paying
        for the vocabulary-wide output layer at padding and special tokens.
        """
        if positions is None:
            positions = lm_positions(input_ids, attention_mask, self.config.gpt1_token_ids)
        targets = lm_targets(input_ids, attention_mask, self.config.gpt1_token_ids)[:, 1:].flatten()
        logits = hidden[:, :-1].flatten(0, 1).index_select(0, positions) @ self.transformer.wte.weight.T
        return F.cross_entropy(logits, targets.index_select(0, positions))

    def flops_profile(self) -> costs.FlopsProfile:
        """W_y once per sentence; with λ > 0, the tied output layer at every LM target (``lm_positions``)."""
        lm_head = (self.transformer.wte.weight,) if self.config.lm_weight else ()
        profile = costs.transformer_profile(self, sequence_modules=("score.",), output_weights=lm_head)
        return replace(profile, predictions=lambda batch: len(batch["lm_positions"]))


@dataclass
class GPT1Output(SequenceClassifierOutput):
    """The classifier's output: ``loss`` (what the trainer minimises) and its two parts."""
    task_loss: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None


def load_gpt1_classifier(checkpoint=None, start: str = "pretrained", lm_weight: float = AUX_LM_WEIGHT,
                         num_labels: int = 2) -> tuple:
    """(model, tokenizer): a GPT-1-style classifier on ``checkpoint`` (default: the course GPT).

    ``start="scratch"`` builds the same architecture, the same tokenizer, with random weights: the
    control that says what pretraining is worth. Seed before calling: the new head (and, from
    scratch, everything) is drawn from the global generator.
    """
    if start not in ("pretrained", "scratch"):
        raise ConfigError(f"start must be 'pretrained' or 'scratch', not {start!r}")
    checkpoint = checkpoint or pretraining.course_checkpoint("gpt")
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    ids = add_gpt1_tokens(tokenizer)
    config = AutoConfig.from_pretrained(checkpoint, num_labels=num_labels, **FINETUNE_DROPOUT["gpt2"])
    config.lm_weight, config.extract_token_id, config.gpt1_token_ids = lm_weight, ids[EXTRACT], list(ids.values())
    model = (GPT1Classifier.from_pretrained(checkpoint, config=config) if start == "pretrained"
             else GPT1Classifier(config))
    model.resize_token_embeddings(len(tokenizer))  # rows for the three new tokens
    match_tokenizer(model, tokenizer)
    return model, tokenizer


def finetune(model, tokenizer, train: Split, config, max_length: int = 64) -> Trainer:
    """Fine-tune with the course trainer on GPT-1-transformed inputs; the trainer keeps the history."""
    trainer = Trainer(model, encode(tokenizer, train, max_length), model_collator(model, tokenizer), config,
                      tokenizer=tokenizer, targets=len_labels)
    trainer.fit()
    return trainer


def len_labels(batch: dict) -> int:
    """A classification batch's targets: one label per sentence."""
    return len(batch["labels"])


def evaluate(model, examples: list, collate, batch_size: int = 64) -> dict:
    """Accuracy, mean task loss and mean auxiliary LM loss (per predicted token) over ``examples``.

    The LM loss on held-out sentences says how much of its pretraining skill a fine-tuned model
    kept: the thing the auxiliary objective is there to protect.
    """
    correct = task = lm = tokens = 0.0
    for batch, out in forward_batches(model, examples, collate, batch_size):
        n_tokens = len(batch["lm_positions"])
        correct += (out.logits.argmax(-1) == batch["labels"]).sum().item()
        task += out.task_loss.item() * len(batch["labels"])
        lm += out.lm_loss.item() * n_tokens
        tokens += n_tokens
    return {"accuracy": correct / len(examples), "task_loss": task / len(examples), "lm_loss": lm / tokens}


# --- the experiment: pretrained against random weights, with and without the auxiliary LM ----------

@dataclass(frozen=True)
class Arm:
    """Where the weights start and how much the auxiliary LM loss weighs."""
    name: str
    start: str
    lm_weight: float


ARMS = {arm.name: arm for arm in (
    Arm("course GPT, λ=0.5 (GPT-1)", "pretrained", AUX_LM_WEIGHT),
    Arm("course GPT, λ=0", "pretrained", 0.0),
    Arm("random weights, λ=0", "scratch", 0.0),
    Arm("random weights, λ=0.5", "scratch", AUX_LM_WEIGHT),
)}
BUDGETS = (100, 500, 2000)


def run(arm_name: str, sst2, labels: int, seed: int = 0, lr: float | None = None, checkpoint=None,
        **overrides) -> dict:
    """One run: ``labels`` balanced SST-2 training sentences drawn with ``seed``, by ``finetune.recipe``.

    The same draw as ``label_budget.run``, so these rows line up with the course BERT's and TF-IDF's.
    Returns dev accuracy, the dev losses (task, LM), steps and seconds. ``overrides`` are ``TrainConfig``
    fields; ``checkpoint`` defaults to the course GPT.
    """
    if arm_name not in ARMS:
        raise ConfigError(f"unknown arm {arm_name!r}; choose from {sorted(ARMS)}")
    arm = ARMS[arm_name]
    began = time.perf_counter()
    train = sst2["train"].take(labels, seed=seed)
    seed_everything(seed)
    model, tokenizer = load_gpt1_classifier(checkpoint, start=arm.start, lm_weight=arm.lm_weight)
    trainer = finetune(model, tokenizer, train, recipe(labels, lr or learning_rate("course", arm.start), seed,
                                                        **overrides))
    scores = evaluate(model, encode(tokenizer, sst2["dev"]), trainer.collate)
    return {"arm": arm.name, "labels": labels, "seed": seed, "dev": scores["accuracy"],
            "dev_task_loss": scores["task_loss"], "dev_lm_loss": scores["lm_loss"], "steps": trainer.step,
            "seconds": time.perf_counter() - began}
