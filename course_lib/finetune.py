"""Fine-tuning (미세조정) a sequence classifier: load a start, encode a labelled split, train, score.

One path for the demo, the CLI's ``finetune`` and ``evaluate``, the notebooks and the benchmarks:
``load_classifier`` gives the model (the real MiniLM, or a course checkpoint from one of the
``STARTS``) with fine-tuning dropout switched on; ``recipe`` is the course's one fine-tuning
schedule, at the learning rate ``learning_rate`` gives each starting point; ``finetune`` trains with
the course trainer.
"""
import torch
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from . import checkpoints, models
from .data import Split
from .errors import ConfigError
from .hardware import pick_device
from .objectives import masked_lm_collator
from .runtime import seed_everything
from .trainer import Trainer, TrainConfig, accuracy, evaluate, forward_batches, model_device

# Pretraining runs without dropout (each token is seen a few times); fine-tuning on a few hundred
# labels repeats them for epochs, so dropout comes back on, at BERT's and GPT's 0.1.
FINETUNE_DROPOUT = {
    "modernbert": dict(embedding_dropout=0.1, attention_dropout=0.1, mlp_dropout=0.1, classifier_dropout=0.1),
    "gpt2": dict(embd_pdrop=0.1, attn_pdrop=0.1, resid_pdrop=0.1, summary_first_dropout=0.1),
}
STARTS = ("pretrained", "embeddings", "scratch")
MINILM = "minilm"

# The course's fine-tuning schedule: EPOCHS passes over the labels in batches of BATCH_SIZE, at least
# MIN_STEPS steps (a small budget gets many epochs), a tenth of them warmup, then linear decay to 0.
EPOCHS, MIN_STEPS, BATCH_SIZE = 3, 50, 32
# Peak learning rate by model and start. Pretrained weights want a small rate (large steps wreck what they
# know), random ones a larger one; the course's own checkpoints are 20x smaller than MiniLM and were
# pretrained at 1e-3 or more. Where each comes from: benchmarks/RESULTS.md, "Fine-tuning strategies and the
# learning-rate sweep" (MiniLM) and "Korean track" (the Korean BERT).
LEARNING_RATES = {
    "minilm": {"pretrained": 1e-4, "scratch": 5e-4},
    "course": {"pretrained": 1e-3, "embeddings": 1e-3, "scratch": 1e-3},  # the course GPT and BERT
    "korean-bert": {"pretrained": 3e-3, "embeddings": 3e-3, "scratch": 3e-3},
}


def steps_for(n_labels: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps for ``epochs`` passes over ``n_labels`` examples (at least one)."""
    return max(1, n_labels * epochs // batch_size)


def learning_rate(model: str, start: str = "pretrained") -> float:
    """The course's fine-tuning rate for ``model`` (a key of ``LEARNING_RATES``) from ``start``."""
    if model not in LEARNING_RATES or start not in LEARNING_RATES[model]:
        raise ConfigError(f"no learning rate for {model!r} from {start!r}; the course has "
                          + "; ".join(f"{m}: {', '.join(rates)}" for m, rates in LEARNING_RATES.items()))
    return LEARNING_RATES[model][start]


def recipe(labels: int, lr: float, seed: int = 0, epochs: int = EPOCHS, **overrides) -> TrainConfig:
    """The course's fine-tuning schedule for ``labels`` examples at peak rate ``lr``; ``overrides`` are TrainConfig fields."""
    batch_size = batch_size_for(overrides.pop("batch_size", BATCH_SIZE), labels)
    steps = overrides.pop("max_steps", max(steps_for(labels, batch_size, epochs), MIN_STEPS))
    return TrainConfig(**{"max_steps": steps, "batch_size": batch_size, "lr": lr, "warmup_steps": steps // 10,
                          "seed": seed, "progress": False, **overrides})


def labels_for(labels: int, available: int) -> int:
    """The label budget a training split can give; a larger one is cut to the split, with a note."""
    if labels > available:
        print(f"note: asked for {labels} labels but the training split has {available}; using all {available}")
    return min(labels, available)


def batch_size_for(batch_size: int, labels: int) -> int:
    """A batch cannot hold more examples than there are labels: a larger one is cut, with a note."""
    if batch_size > labels:
        print(f"note: batch size {batch_size} is larger than the {labels} labels; using batches of {labels}")
    return min(batch_size, labels)


def classifier(checkpoint, start: str = "pretrained", num_labels: int = 2, pooling: str | None = None):
    """A sequence classifier with the checkpoint's architecture (and fine-tuning dropout), starting from:

    ``"pretrained"``: all of the checkpoint's weights; ``"scratch"``: random weights;
    ``"embeddings"``: random weights except the checkpoint's embedding layer — what its word
    vectors alone are worth, without the pretrained layers above them.
    ``pooling`` (a ModernBERT's ``classifier_pooling``: ``"mean"`` or ``"cls"``) replaces the
    checkpoint's choice of which vector the head reads.
    """
    if start not in STARTS:
        raise ConfigError(f"start must be one of {STARTS}, not {start!r}")
    model_type = AutoConfig.from_pretrained(checkpoint).model_type
    settings = dict(FINETUNE_DROPOUT.get(model_type, {}))
    if pooling is not None:
        if model_type != "modernbert" or pooling not in ("mean", "cls"):
            raise ConfigError(f"pooling {pooling!r} is for a ModernBERT checkpoint ('mean' or 'cls'); this one is {model_type}")
        settings["classifier_pooling"] = pooling
    config = AutoConfig.from_pretrained(checkpoint, num_labels=num_labels, **settings)
    model_class = models.classifier_class(config)
    if start == "pretrained":
        return model_class.from_pretrained(checkpoint, config=config)
    model = model_class.from_config(config) if model_class is AutoModelForSequenceClassification else model_class(config)
    if start == "embeddings":
        pretrained = AutoModel.from_pretrained(checkpoint).get_input_embeddings()
        model.get_input_embeddings().load_state_dict(pretrained.state_dict())
    return model


def load_classifier(checkpoint, num_labels: int = 2, start: str = "pretrained", pooling: str | None = None) -> tuple:
    """(model, tokenizer): ``"minilm"`` (the pretrained package) or a course checkpoint directory.

    The directory is checked first (complete, readable), so a wrong path fails before any data loads.
    """
    if str(checkpoint) == MINILM:
        if start == "embeddings":
            raise ConfigError("the 'embeddings' start is for the course's own checkpoints, not MiniLM")
        return models.load_minilm(num_labels=num_labels, pretrained=start == "pretrained")
    path = checkpoints.require_model(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = classifier(path, start, num_labels, pooling)
    match_tokenizer(model, tokenizer)
    return model, tokenizer


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


def token_labels(word_ids: list, word_labels: list) -> list:
    """One label per subword token for a token-level task whose labels are per word.

    ``word_ids`` is a fast tokenizer's ``encoding.word_ids()``: the word each token came from, None for
    special tokens. A word's first piece gets its label; special tokens and a word's later pieces get
    -100, which the loss and the accuracy skip, so every word counts once however many pieces it has.
    """
    labels, previous = [], None
    for word in word_ids:
        labels.append(-100 if word is None or word == previous else word_labels[word])
        previous = word
    return labels


def padding_collator(tokenizer, multiple: int | None = None):
    """Pad each batch only to its own longest sentence (dynamic padding: no wasted FLOPs).

    ``multiple=8`` rounds the length up to a multiple of 8, the shapes GPU tensor cores run fastest.
    """
    def collate(examples):
        return tokenizer.pad(examples, pad_to_multiple_of=multiple, return_tensors="pt")
    return collate


def finetune(model, tokenizer, train: Split, dev: Split, config: TrainConfig, max_length: int = 64,
             out_dir=None, param_groups=None) -> Trainer:
    """Fine-tune ``model`` on ``train``, evaluating on ``dev``; returns the trainer (history, cost).

    ``param_groups``: AdamW's groups built by hand (e.g. a rate per part); default: by the config's rates.
    """
    match_tokenizer(model, tokenizer)
    multiple = 8 if pick_device(config.device).type == "cuda" else None
    trainer = Trainer(model, encode(tokenizer, train, max_length), padding_collator(tokenizer, multiple), config,
                      eval_data=encode(tokenizer, dev, max_length), accuracy_fn=accuracy,
                      out_dir=out_dir, tokenizer=tokenizer, param_groups=param_groups)
    trainer.fit()
    return trainer


def transfer_scores(checkpoint, train: Split, dev: Split, start: str = "pretrained", seed: int = 0,
                    test: Split | None = None, pooling: str | None = None, **overrides) -> dict:
    """{"dev": accuracy (and "test": accuracy, given ``test``)} after fine-tuning a course checkpoint on
    ``train`` from one of the ``STARTS``, by ``recipe``.

    The dev set is scored during training; the test set only once, at the end, so nothing is chosen on it.
    ``pooling``: see ``classifier``.
    """
    seed_everything(seed)
    model, tokenizer = load_classifier(checkpoint, start=start, pooling=pooling)
    config = recipe(len(train), overrides.pop("lr", learning_rate("course", start)), seed, **overrides)
    trainer = finetune(model, tokenizer, train, dev, config)
    scores = {"dev": trainer.history["eval"][-1]["accuracy"]}
    if test is not None:
        scores["test"] = trainer.evaluate(encode(tokenizer, test))["accuracy"]
    return scores


def transfer_accuracy(checkpoint, train: Split, dev: Split, start: str = "pretrained", seed: int = 0,
                      **overrides) -> float:
    """Dev accuracy after fine-tuning a course checkpoint on ``train`` from one of the ``STARTS``: ``transfer_scores``."""
    return transfer_scores(checkpoint, train, dev, start, seed, **overrides)["dev"]


def logits(model, tokenizer, texts: list, batch_size: int = 64, max_length: int = 64) -> torch.Tensor:
    """The model's output logits for raw ``texts``, one row per text, in the order given.

    Texts are batched shortest first, so each batch pads to a length close to its own sentences'
    instead of to the longest sentence of a random draw (the same answers, far fewer FLOPs).
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    limit = min(max_length, tokenizer.model_max_length)

    def collate(chunk):
        return tokenizer(chunk, truncation=True, padding=True, max_length=limit, return_tensors="pt")

    rows = [out.logits.float().cpu()
            for _, out in forward_batches(model, [texts[j] for j in order], collate, batch_size)]
    by_length = torch.cat(rows) if rows else torch.empty(0, model.config.num_labels)
    return by_length[torch.tensor(order, dtype=torch.long).argsort()]


def predict(model, tokenizer, texts: list, batch_size: int = 64, max_length: int = 64) -> list:
    """Predicted label ids for raw ``texts``."""
    return logits(model, tokenizer, texts, batch_size, max_length).argmax(-1).tolist()


def masked_lm_loss(classifier, checkpoint, blocks: list, seed: int = 0) -> float:
    """Masked-LM loss on ``blocks`` of ``checkpoint``'s pretrained MLM head over ``classifier``'s encoder.

    How much of its pretraining task a fine-tuned model can still do: catastrophic forgetting as a
    number. The masks are drawn with ``seed``, so every model compared fills the same blanks.
    """
    mlm = AutoModelForMaskedLM.from_pretrained(checkpoint).to(model_device(classifier))
    mlm.base_model.load_state_dict(classifier.base_model.state_dict())
    collate = masked_lm_collator(AutoTokenizer.from_pretrained(checkpoint))
    return evaluate(mlm, blocks, collate, seed=seed)["loss"]
