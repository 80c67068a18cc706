"""Two ways to make a GPT classify sentences: fine-tune it (GPT-1) or prompt it (GPT-2, GPT-3).

**Fine-tuning, GPT-1's recipe** (Radford et al. 2018, sections 3.2-3.3). A decoder reads left to
right, so the input is rewritten into one token sequence whose *last* token has seen everything:
``<start> text <extract>`` (a pair: ``<start> a <delim> b <extract>``). A linear layer W_y reads the
final hidden state at ``<extract>``. The three tokens are new: they get rows in the embedding matrix,
which fine-tuning trains with W_y. The loss keeps the pretraining objective on the labelled
sentences as an auxiliary term, ``L = L_task + λ·L_LM`` with λ = 0.5.

**Prompting** (GPT-2, GPT-3): no weight changes. The sentence is followed by a template
(" it was") and the label whose word (" terrible" / " great") the model finds more likely wins;
k labelled examples written the same way before it make it k-shot (in-context learning).
"""
import random
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GPT2ForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

from . import pretraining
from .data import Split
from .errors import ConfigError
from .finetune import FINETUNE_DROPOUT, match_tokenizer, padding_collator
from .label_budget import recipe
from .runtime import seed_everything
from .trainer import IGNORE, Trainer, accuracy

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


# --- the model: a classifier on the extract token, plus the auxiliary language model ---------------

def extract_positions(input_ids: torch.Tensor, extract_id: int) -> torch.Tensor:
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


class GPT1Classifier(GPT2ForSequenceClassification):
    """``GPT2ForSequenceClassification`` with GPT-1's fine-tuning: W_y on the extract token, L = L_task + λ·L_LM.

    transformers' class already reads the last non-padding token, which the transformation makes
    the extract token; this one finds it by its id, adds GPT-1's classifier dropout, and adds the
    language-modelling loss through the pretrained output layer (GPT-2's LM head *is* the input
    embedding matrix, tied, so ``hidden @ wte.T`` is exactly the pretrained next-token predictor).
    Its configuration carries ``lm_weight`` (λ), ``extract_token_id`` and ``gpt1_token_ids``.
    """

    def __init__(self, config):
        super().__init__(config)
        self.dropout = torch.nn.Dropout(config.summary_first_dropout)

    def forward(self, input_ids, attention_mask=None, labels=None, **kwargs):
        attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        hidden = self.transformer(input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(len(input_ids), device=input_ids.device)
        logits = self.score(self.dropout(hidden[rows, extract_positions(input_ids, self.config.extract_token_id)]))
        loss = task_loss = lm_loss = None
        if labels is not None:
            loss = task_loss = F.cross_entropy(logits, labels)
            if self.config.lm_weight or not self.training:  # training with λ = 0 skips it; evaluation reports it
                lm_loss = self.lm_loss(hidden, input_ids, attention_mask)
                loss = task_loss + self.config.lm_weight * lm_loss
        return GPT1Output(loss=loss, logits=logits, task_loss=task_loss, lm_loss=lm_loss)

    def lm_loss(self, hidden, input_ids, attention_mask) -> torch.Tensor:
        """``causal_lm_loss`` through the tied output layer, computed only where there is a target.

        The same number as the full (batch, length, vocabulary) logits would give, without paying
        for the vocabulary-wide output layer at padding and special tokens.
        """
        targets = lm_targets(input_ids, attention_mask, self.config.gpt1_token_ids)[:, 1:]
        keep = targets != IGNORE
        logits = hidden[:, :-1][keep] @ self.transformer.wte.weight.T
        return F.cross_entropy(logits, targets[keep])


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
    trainer = Trainer(model, encode(tokenizer, train, max_length), padding_collator(tokenizer), config,
                      tokenizer=tokenizer)
    trainer.fit()
    return trainer


@torch.no_grad()
def evaluate(model, examples: list, collate, batch_size: int = 64) -> dict:
    """Accuracy, mean task loss and mean auxiliary LM loss (per predicted token) over ``examples``.

    The LM loss on held-out sentences says how much of its pretraining skill a fine-tuned model
    kept: the thing the auxiliary objective is there to protect.
    """
    model.eval()
    correct = task = lm = tokens = 0.0
    for i in range(0, len(examples), batch_size):
        batch = collate(examples[i:i + batch_size])
        out = model(**batch)
        n_tokens = int((lm_targets(batch["input_ids"], batch["attention_mask"],
                                   model.config.gpt1_token_ids)[:, 1:] != IGNORE).sum())
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
LR = 1e-3  # the course GPT's fine-tuning rate, the course BERT's too (notebook 07)
BUDGETS = (100, 500, 2000)


def run(arm_name: str, sst2, labels: int, seed: int = 0, lr: float = LR, checkpoint=None, **overrides) -> dict:
    """One run: ``labels`` balanced SST-2 training sentences drawn with ``seed``, label_budget's schedule.

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
    trainer = finetune(model, tokenizer, train, recipe(labels, lr, seed, **overrides))
    scores = evaluate(model, encode(tokenizer, sst2["dev"]), trainer.collate)
    return {"arm": arm.name, "labels": labels, "seed": seed, "dev": scores["accuracy"],
            "dev_task_loss": scores["task_loss"], "dev_lm_loss": scores["lm_loss"], "steps": trainer.step,
            "seconds": time.perf_counter() - began}


# --- prompting: label words, demonstrations, calibration -------------------------------------------

TEMPLATE = "{text} it was"             # LM-BFF's SST-2 template (Gao et al. 2021), lower-cased like SST-2
LABEL_WORDS = (" terrible", " great")  # label id -> word: 0 negative, 1 positive
CONTENT_FREE = ("n/a", "")             # inputs with no sentiment (Zhao et al. 2021's "N/A" and the empty one)
SHOTS = (0, 1, 4, 8)


def window(model) -> int:
    """The most tokens the model has positions for (64 for the course GPT, 1,024 for GPT-2)."""
    return model.config.n_positions


def demonstration(text: str, label: int, template: str = TEMPLATE, words=LABEL_WORDS) -> str:
    """One solved example, written the way the query will be: ``"a gem . it was great ."``."""
    return template.format(text=text) + words[label] + " ."


def prompt(text: str, demos: Split | None = None, template: str = TEMPLATE, words=LABEL_WORDS,
           separator: str = "\n") -> str:
    """The demonstrations, then the query with the template; the model's next word is the answer."""
    shots = [demonstration(t, y, template, words) for t, y in zip(demos.texts, demos.labels)] if demos else []
    return separator.join(shots + [template.format(text=text)])


def fit_prompt(tokenizer, text: str, demos: Split | None, limit: int, separator: str, template: str = TEMPLATE,
               words=LABEL_WORDS) -> tuple:
    """(prompt, demonstrations kept): the earliest demonstrations are dropped until prompt and label fit in ``limit`` tokens.

    Whole demonstrations go, never half of one; a query too long on its own is cut from the left
    later, by ``label_logprobs``.
    """
    longest = max(len(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in words)
    n = len(demos) if demos else 0
    while True:
        kept = Split(demos.texts[len(demos) - n:], demos.labels[len(demos) - n:]) if n else None
        text_prompt = prompt(text, kept, template, words, separator)
        if n == 0 or len(tokenizer(text_prompt, add_special_tokens=False)["input_ids"]) + longest <= limit:
            return text_prompt, n
        n -= 1


@torch.no_grad()
def label_logprobs(model, tokenizer, prompts: list, words=LABEL_WORDS, batch_size: int = 64) -> torch.Tensor:
    """log p(word | prompt) for every prompt and label word, shape (prompts, words).

    A word of several tokens scores the sum of its tokens' log-probabilities, each given the prompt
    and the word's earlier tokens: one sequence per (prompt, word). When every word is one token,
    one sequence per prompt gives them all at its last position. The output layer runs only where a
    word's token is predicted, not at every position. Sequences longer than the model's window
    lose their first tokens.
    """
    model.eval()
    device = next(model.parameters()).device
    word_ids = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    if all(len(w) == 1 for w in word_ids):
        sequences = [(p[-window(model):], [w[0] for w in word_ids], 1) for p in prompt_ids]
    else:  # (prompt + word) with the word's last token dropped: each of its tokens is predicted once
        sequences = [((p + w)[-window(model) - 1:-1], w, len(w)) for p in prompt_ids for w in word_ids]
    scores = []
    for i in range(0, len(sequences), batch_size):
        chunk = sequences[i:i + batch_size]
        width = max(len(seq) for seq, _, _ in chunk)
        ids = torch.tensor([seq + [tokenizer.pad_token_id] * (width - len(seq)) for seq, _, _ in chunk], device=device)
        mask = (torch.arange(width) < torch.tensor([len(seq) for seq, _, _ in chunk])[:, None]).long().to(device)
        hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        for row, (seq, targets, n) in enumerate(chunk):
            logprobs = model.get_output_embeddings()(hidden[row, len(seq) - n:len(seq)]).float().log_softmax(-1)
            if n == 1 and len(targets) > 1:  # every word read at the last position
                scores += list(logprobs[0, targets])
            else:
                scores.append(logprobs[torch.arange(n), torch.tensor(targets, device=device)].sum())
    return torch.stack(scores).view(len(prompts), len(words)).cpu()


def draw_demonstrations(train: Split, k: int, seed: int, max_words: int = 8) -> Split | None:
    """``k`` training examples drawn at random (as GPT-3 drew them) among those of at most ``max_words`` words.

    Short ones, so that several fit in a small model's window next to a dev sentence.
    """
    if k == 0:
        return None
    pool = [i for i, text in enumerate(train.texts) if 2 <= len(text.split()) <= max_words]
    chosen = random.Random(seed).sample(pool, k)
    return Split([train.texts[i] for i in chosen], [train.labels[i] for i in chosen])


def calibrate(scores: torch.Tensor, content_free: torch.Tensor) -> torch.Tensor:
    """Contextual calibration (Zhao et al. 2021): divide out the label bias the prompt has on its own.

    ``content_free`` are the label-word scores for inputs that say nothing ("n/a", ""); their mean
    probability over the label words is the model's prior for each word *in this prompt*. In log
    space dividing is subtracting, after both are normalised over the label words.
    """
    return scores.log_softmax(-1) - content_free.log_softmax(-1).exp().mean(0).log()


def k_shot(model, tokenizer, train: Split, dev: Split, k: int, seed: int = 0, separator: str = "\n",
           template: str = TEMPLATE, words=LABEL_WORDS) -> dict:
    """Accuracy on ``dev`` of ``k`` demonstrations (drawn with ``seed``) and the label words, no training.

    Also: contextual calibration (Zhao et al. 2021): the same prompt with a content-free input tells
    how much the model favours each word *before* reading any sentence; dividing that out (in
    log space: subtracting) removes the bias. Returns raw and calibrated accuracy, the share of
    sentences predicted positive, and how many demonstrations fitted in the window on average.
    """
    demos = draw_demonstrations(train, k, seed)
    fitted = [fit_prompt(tokenizer, text, demos, window(model), separator, template, words) for text in dev.texts]
    scores = label_logprobs(model, tokenizer, [p for p, _ in fitted], words)
    content_free = [fit_prompt(tokenizer, text, demos, window(model), separator, template, words)[0]
                    for text in CONTENT_FREE]
    labels = torch.tensor(dev.labels)
    raw = scores.argmax(-1)
    calibrated = calibrate(scores, label_logprobs(model, tokenizer, content_free, words)).argmax(-1)
    return {"k": k, "seed": seed, "accuracy": (raw == labels).float().mean().item(),
            "calibrated": (calibrated == labels).float().mean().item(),
            "positive_share": (raw == 1).float().mean().item(),
            "demos_used": statistics.mean(n for _, n in fitted)}


def prompt_model(name: str = "course") -> tuple:
    """(model, tokenizer, separator) for prompting: ``"course"`` (the course GPT) or a Hub name such as ``"gpt2"``.

    The separator between demonstrations is what the model saw between texts in pretraining: the
    course GPT's sentences were joined by its end-of-text token; GPT-2's web pages have newlines.
    """
    if name == "course":
        path = pretraining.course_checkpoint("gpt")
        tokenizer = AutoTokenizer.from_pretrained(path)
        return AutoModelForCausalLM.from_pretrained(path).eval(), tokenizer, tokenizer.eos_token
    tokenizer = AutoTokenizer.from_pretrained(name)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # label_logprobs pads on the right; the mask hides it
    return AutoModelForCausalLM.from_pretrained(name).eval(), tokenizer, "\n"
