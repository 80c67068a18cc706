"""Parameter-efficient fine-tuning (PEFT, 매개변수 효율적 미세조정): train a few weights, keep the rest as pretrained.

Full fine-tuning trains, stores and ships every weight of the model for every task. Each method here trains
a small set and freezes the rest, so one copy of the pretrained body serves many tasks:

- ``lora``: LoRA (Hu et al. 2021) adds a low-rank update ``(alpha / r) * B @ A`` beside each chosen weight
  matrix (``A``: r x d_in, ``B``: d_out x r, ``B`` starting at zero, so training starts from the pretrained model);
  after training it can be merged into the matrix, and inference costs nothing extra.
- ``ia3``: IA3 (Liu et al. 2022) learns one scale per channel of the keys, the values and the feed-forward
  layer's inner activation: fewer weights than LoRA, nothing but rescaling.
- ``bitfit``: BitFit (Ben Zaken et al. 2022) trains only the bias vectors.
- ``probe``: a linear probe trains only the new head on the frozen body's sentence vectors.

Every method trains the task head (``HEAD``), which is new for the task; ``full`` trains everything. LoRA and
IA3 come from the ``peft`` library (the model is wrapped in a ``PeftModel`` that saves only what it trained);
BitFit and the probe only switch ``requires_grad``, to show that a PEFT method is a choice of what trains.
"""
import statistics

from peft import IA3Config, LoraConfig, get_peft_model

from .errors import ConfigError
from .finetune import MINILM, encode, finetune, load_classifier, recipe
from .runtime import seed_everything

HEAD = "classifier"  # the task head of the course's classifiers and of transformers' BERT classifiers
METHODS = ("full", "lora", "ia3", "bitfit", "probe")
LORA_MODULES = ("query", "value")  # the attention projections LoRA's paper adapts
# BERT's module names: the keys, the values and the feed-forward output layer, whose input is the inner activation
IA3_MODULES = r".*layer\.\d+\.(attention\.self\.(key|value)|output\.dense)"
IA3_FEEDFORWARD = r".*layer\.\d+\.output\.dense"


def lora(model, r: int = 8, alpha: int = 16, modules=LORA_MODULES, dropout: float = 0.1):
    """``model`` with LoRA of rank ``r`` on each of ``modules`` (module names or their last parts), the head trained."""
    if r < 1:
        raise ConfigError(f"LoRA's rank r must be at least 1, not {r}")
    return get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules=list(modules),
                                            lora_dropout=dropout, modules_to_save=[HEAD]))


def ia3(model):
    """``model`` with IA3's learned scales on keys, values and the feed-forward inner activation, the head trained."""
    return get_peft_model(model, IA3Config(target_modules=IA3_MODULES, feedforward_modules=IA3_FEEDFORWARD,
                                           modules_to_save=[HEAD]))


def train_only(model, keep):
    """Freeze every weight of ``model`` except the head and those whose name ``keep(name)`` accepts."""
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(HEAD + ".") or keep(name)
    return model


def bitfit(model):
    """``model`` training only its biases and its head (BitFit)."""
    return train_only(model, lambda name: name.endswith(".bias"))


def probe(model):
    """``model`` training only its head: a linear probe of the frozen body's features."""
    return train_only(model, lambda name: False)


def prepare(model, method: str, **options):
    """``model`` set up for fine-tuning by ``method`` (one of ``METHODS``); ``options`` go to ``lora``."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, not {method!r}")
    if options and method != "lora":
        raise ConfigError(f"only LoRA takes options ({', '.join(options)}); {method!r} has none")
    return {"full": lambda m: m, "lora": lambda m: lora(m, **options), "ia3": ia3, "bitfit": bitfit,
            "probe": probe}[method](model)


def trainable_parameters(model) -> int:
    """The weights that fine-tuning changes, the ones a task's copy must store."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def frozen_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if not p.requires_grad)


def training_state_bytes(model, bytes_per_value: int = 4) -> int:
    """Memory for the weights, the gradients and AdamW's two moments in fp32, activations left out.

    Every weight is held once; only a trainable one has a gradient and two moments. The activations kept for the
    backward pass come on top, and depend on the batch and on how much of the body the gradient must cross.
    """
    return bytes_per_value * (frozen_parameters(model) + 4 * trainable_parameters(model))


# The benchmark's arms (benchmarks/peft_vs_full.py, notebook 12): name -> (method, options). LoRA's alpha is twice its rank,
# so the update's scale alpha / r is the same at every rank and one learning rate can serve them all.
ARMS = {"full fine-tuning": ("full", {}), **{f"LoRA r={r}": ("lora", {"r": r, "alpha": 2 * r}) for r in (4, 8, 16)},
        "IA3": ("ia3", {}), "BitFit": ("bitfit", {}), "linear probe": ("probe", {})}
# The learning rates each method's selection tries: the fewer weights train, the larger the steps they take.
RATES = {"full": (3e-5, 1e-4, 3e-4), "lora": (3e-4, 1e-3, 3e-3, 1e-2), "ia3": (1e-3, 3e-3, 1e-2, 3e-2),
         "bitfit": (3e-4, 1e-3, 3e-3, 1e-2), "probe": (1e-3, 3e-3, 1e-2, 3e-2)}


def finetune_arm(arm: str, train, dev, lr: float, seed: int = 0, checkpoint=MINILM) -> tuple:
    """(model, tokenizer, trainer): ``checkpoint`` (MiniLM) fine-tuned by one of ``ARMS`` with the course recipe at ``lr``."""
    if arm not in ARMS:
        raise ConfigError(f"unknown arm {arm!r}; choose from {', '.join(ARMS)}")
    method, options = ARMS[arm]
    seed_everything(seed)
    model, tokenizer = load_classifier(checkpoint)
    model = prepare(model, method, **options)
    trainer = finetune(model, tokenizer, train, dev, recipe(len(train), lr, seed))
    return model, tokenizer, trainer


def arm_row(arm: str, lr: float, seed: int, model, trainer) -> dict:
    """What a fine-tuned arm reached and cost: dev accuracy, trainable weights (what a task's copy stores), the fp32
    training state without activations, and the wall time per step (a measurement of this machine, not a property)."""
    return {"arm": arm, "lr": lr, "labels": len(trainer.train_data), "seed": seed,
            "dev": trainer.history["eval"][-1]["accuracy"], "trainable": trainable_parameters(model),
            "state_bytes": training_state_bytes(model), "steps": trainer.step,
            "seconds_per_step": trainer.cost.seconds / trainer.step}


def run_arm(arm: str, train, dev, lr: float, seed: int = 0, test=None, checkpoint=MINILM) -> dict:
    """``arm_row`` of ``finetune_arm``, with the test accuracy too when ``test`` is given (scored once, at the end)."""
    model, tokenizer, trainer = finetune_arm(arm, train, dev, lr, seed, checkpoint)
    row = arm_row(arm, lr, seed, model, trainer)
    if test is not None:
        row["test"] = trainer.evaluate(encode(tokenizer, test))["accuracy"]
    return row


def chosen_rates(rows: list) -> dict:
    """{arm: its learning rate}: the best selection accuracy among the rates tried (ties: the smaller rate)."""
    best = {}
    for r in sorted((r for r in rows if r["phase"] == "select"), key=lambda r: r["lr"]):
        if r["arm"] not in best or r["dev"] > best[r["arm"]]["dev"]:
            best[r["arm"]] = r
    return {arm: r["lr"] for arm, r in best.items()}


def summary(rows: list) -> dict:
    """{(arm, labels): means and spreads} of the scored runs at each arm's chosen rate (benchmarks/peft_vs_full.jsonl).

    Each value holds ``dev`` and ``test`` (mean and standard deviation in %, over seeds), ``n`` seeds, and the
    arm's ``trainable`` weights, ``state_bytes`` and mean ``seconds_per_step``.
    """
    rates, groups = chosen_rates(rows), {}
    for r in rows:
        if r["phase"] == "score" and r["lr"] == rates.get(r["arm"]):
            groups.setdefault((r["arm"], r["budget"]), []).append(r)
    spread = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
    result = {}
    for key, runs in groups.items():
        scores = {split: [100 * r[split] for r in runs] for split in ("dev", "test")}
        result[key] = {**{split: (statistics.mean(xs), spread(xs)) for split, xs in scores.items()}, "n": len(runs),
                       "lr": runs[0]["lr"], "trainable": runs[0]["trainable"], "state_bytes": runs[0]["state_bytes"],
                       "seconds_per_step": statistics.mean(r["seconds_per_step"] for r in runs)}
    return result
