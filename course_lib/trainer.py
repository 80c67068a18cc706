"""The course's trainer: one loop you can read in one sitting.

Like minGPT's, it knows nothing about the model except that ``model(**batch)`` returns an
object with ``.loss`` and ``.logits`` — so one loop trains a GPT, a BERT and a classifier.
Everything a real run needs is here, each in a few lines you can step through:

    device + precision   ->  pick_device, autocast (bf16, or fp16 with a GradScaler)
    optimisation         ->  AdamW over optim.param_groups, warmup + decay, clipping,
                             gradient accumulation, gradual unfreezing
    bookkeeping          ->  evaluation, history for plots, tqdm bar, tokens/s, FLOPs, MFU, energy
    safety               ->  atomic checkpoints and exact resume (weights, optimizer, schedule, RNG)
"""
import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from . import optim
from .costs import RunCost, training_flops_per_token
from .runtime import seed_everything

STATE_TENSORS = "trainer_state.safetensors"
STATE_JSON = "trainer_state.json"


@dataclass
class TrainConfig:
    max_steps: int = 100
    batch_size: int = 32             # examples per optimizer step, split into grad_accum micro-batches
    grad_accum: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 0
    schedule: str = "linear"         # linear | cosine | constant (after warmup)
    max_grad_norm: float | None = 1.0
    layer_decay: float | None = None  # lr x decay^(distance from the head), see optim.py
    unfreeze: dict = field(default_factory=dict)  # {step: n top groups trainable (None = all)}
    precision: str = "auto"          # auto | fp32 | bf16 | fp16
    device: str = "auto"             # auto | cpu | cuda | mps
    eval_every: int = 0              # 0: evaluate once, at the end
    eval_batch_size: int = 64
    checkpoint_every: int = 0        # 0: only when fit() ends (if out_dir is set)
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by grad_accum {self.grad_accum}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, not {self.schedule!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, not {self.precision!r}")
        self.unfreeze = {int(step): n for step, n in self.unfreeze.items()}  # JSON keys are strings


def pick_device(name: str = "auto") -> torch.device:
    """CUDA if present, else Apple's MPS, else CPU — or exactly what was asked for."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_precision(name: str, device: torch.device) -> str:
    """``auto`` means bf16 on GPUs that support it, fp32 elsewhere (CPU autocast is rarely faster)."""
    if name != "auto":
        return name
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"


def _linear(progress):
    return 1.0 - progress


def _cosine(progress):
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _constant(progress):
    return 1.0


SCHEDULES = {"linear": _linear, "cosine": _cosine, "constant": _constant}


def lr_multiplier(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to the peak, then the chosen decay to zero at ``max_steps``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return SCHEDULES[cfg.schedule](min(progress, 1.0))


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple:
    """(correct, counted) over positions whose label is not -100 (classification and MLM).

    ``logits`` cover every position (..., vocab), or only the labelled ones (n_labelled, vocab), as
    a masked LM with a sparse output layer returns them.
    """
    keep = labels != -100
    predictions = logits.argmax(-1)
    if predictions.shape == labels.shape:
        predictions = predictions[keep]
    return (predictions == labels[keep]).sum().item(), keep.sum().item()


def next_token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple:
    """Accuracy for causal LMs, whose position t predicts the label at t+1."""
    return accuracy(logits[:, :-1], labels[:, 1:])


def count_targets(batch: dict) -> int:
    return int((batch["labels"] != -100).sum())


def count_tokens(batch: dict) -> int:
    mask = batch.get("attention_mask")
    return int(mask.sum()) if mask is not None else batch["input_ids"].numel()


@torch.no_grad()
def evaluate(model, data, collate, batch_size: int = 64, accuracy_fn=None) -> dict:
    """Mean loss per target (and accuracy, given ``accuracy_fn``) over ``data``, in order."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum, targets, correct, counted = 0.0, 0, 0, 0
    for i in range(0, len(data), batch_size):
        batch = {k: v.to(device) for k, v in collate(data[i:i + batch_size]).items()}
        n = count_targets(batch)
        if n == 0:
            continue
        out = model(**batch)
        loss_sum += out.loss.float().item() * n
        targets += n
        if accuracy_fn:
            c, k = accuracy_fn(out.logits.float(), batch["labels"])
            correct, counted = correct + c, counted + k
    result = {"loss": loss_sum / targets}
    if accuracy_fn:
        result["accuracy"] = correct / counted
    return result


class Trainer:
    """Train ``model`` on ``train_data`` (a list of examples) batched by ``collate``.

    ``collate(list_of_examples)`` returns a dict of tensors including ``labels``.
    ``accuracy_fn(logits, labels) -> (correct, counted)`` adds accuracy to evaluation.
    """

    def __init__(self, model, train_data, collate, config: TrainConfig, eval_data=None,
                 accuracy_fn=None, out_dir=None, tokenizer=None):
        self.cfg = config
        self.device = pick_device(config.device)
        self.precision = pick_precision(config.precision, self.device)
        self.model = model.to(self.device)
        self.train_data, self.eval_data, self.collate = train_data, eval_data, collate
        self.accuracy_fn = accuracy_fn
        self.out_dir = Path(out_dir) if out_dir else None
        self.tokenizer = tokenizer
        if len(train_data) < config.batch_size:
            raise ValueError(f"train_data has {len(train_data)} examples, fewer than one batch of {config.batch_size}")
        seed_everything(config.seed)
        # fused: one kernel updates every weight, instead of a Python loop of ~10 small ops per tensor
        # (several times faster on CPU and GPU; transformers.Trainer's default too).
        self.optimizer = torch.optim.AdamW(
            optim.param_groups(model, config.lr, config.weight_decay, config.layer_decay),
            fused=self.device.type in ("cpu", "cuda"))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_multiplier(s, config))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.step = 0
        self.history = {"train": [], "eval": []}
        self.cost = RunCost()

    # --- data order: a pure function of (seed, step), so a resumed run sees the same batches ---
    def batch_indices(self, step: int) -> list:
        per_epoch = len(self.train_data) // self.cfg.batch_size
        epoch, offset = divmod(step, per_epoch)
        order = torch.randperm(len(self.train_data), generator=torch.Generator().manual_seed(self.cfg.seed + epoch))
        return order[offset * self.cfg.batch_size:(offset + 1) * self.cfg.batch_size].tolist()

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    # --- one optimizer step -----------------------------------------------------------------
    def train_step(self, examples: list) -> float:
        """Forward and backward over ``grad_accum`` micro-batches, then one optimizer update.

        Each micro-batch loss is weighted by its share of the step's targets, so the gradient
        equals that of one big batch even when micro-batches hold different numbers of targets.
        """
        micro = self.cfg.batch_size // self.cfg.grad_accum
        batches = [self._to_device(self.collate(examples[i:i + micro])) for i in range(0, len(examples), micro)]
        total_targets = sum(count_targets(b) for b in batches)
        step_loss = 0.0
        for batch in batches:
            if count_targets(batch) == 0:
                continue  # e.g. no token happened to be masked: nothing to learn, and its mean loss is NaN
            with self._autocast():
                loss = self.model(**batch).loss * count_targets(batch) / total_targets
            self.scaler.scale(loss).backward()
            step_loss += loss.item()
        self.scaler.unscale_(self.optimizer)
        if self.cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._account(batches)
        return step_loss

    def _account(self, batches: list) -> None:
        tokens = sum(count_tokens(b) for b in batches)
        flops = sum(count_tokens(b) * training_flops_per_token(self.model, b["input_ids"].shape[1]) for b in batches)
        self._step_tokens, self._step_flops = tokens, flops

    def _apply_unfreeze(self) -> None:
        if self.step in self.cfg.unfreeze:
            k = optim.trainable_groups_to_k(self.model, self.cfg.unfreeze[self.step])
            optim.freeze_to(self.model, k)
        elif self.step == 0 and self.cfg.unfreeze:
            raise ValueError("the unfreeze schedule must say what trains at step 0")

    def _current_freeze(self) -> None:
        """After a resume, re-apply the latest unfreeze entry at or before the current step."""
        past = [s for s in self.cfg.unfreeze if s <= self.step]
        if past:
            optim.freeze_to(self.model, optim.trainable_groups_to_k(self.model, self.cfg.unfreeze[max(past)]))

    # --- the loop -----------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train until ``max_steps``; returns the history (also kept on ``self.history``)."""
        self.model.train()
        self._current_freeze()
        # At most one redraw a second: a bar redrawn every step sends thousands of messages from a long
        # run in a notebook, more than Jupyter's output channel buffers (it then drops the cell's output).
        bar = tqdm(total=self.cfg.max_steps, initial=self.step, disable=not self.cfg.progress, desc="train",
                   mininterval=1.0)
        while self.step < self.cfg.max_steps:
            self._apply_unfreeze()
            examples = [self.train_data[i] for i in self.batch_indices(self.step)]
            self._sync()
            start = time.perf_counter()
            loss = self.train_step(examples)
            self._sync()
            self.cost.add(self._step_tokens, self._step_flops, time.perf_counter() - start, self.device)
            self.step += 1
            self.history["train"].append({"step": self.step, "loss": loss, "lr": self.scheduler.get_last_lr()[-1]})
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{self.cost.tokens_per_second:,.0f}", refresh=False)
            bar.update(1)
            if self.cfg.eval_every and self.step % self.cfg.eval_every == 0 and self.step < self.cfg.max_steps:
                self._log_eval()
            if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0 and self.out_dir:
                self.save(self.out_dir)
        bar.close()
        self._log_eval()
        if self.out_dir:
            self.save(self.out_dir)
        return self.history

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def _log_eval(self) -> None:
        if self.eval_data is not None:
            self.history["eval"].append({"step": self.step, **self.evaluate()})
            self.model.train()

    def evaluate(self, data=None) -> dict:
        """Loss (and accuracy, given ``accuracy_fn``) on ``data``, by default the eval set."""
        data = self.eval_data if data is None else data
        with self._autocast():
            return evaluate(self.model, data, self.collate, self.cfg.eval_batch_size, self.accuracy_fn)

    # --- checkpoints ----------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write model (``save_pretrained``), tokenizer and trainer state to ``path`` atomically.

        Everything goes to a temporary sibling first and is swapped in with renames, so a crash
        mid-save leaves the previous checkpoint intact. No pickle: tensors go to safetensors,
        the rest to JSON.
        """
        path = Path(path)
        tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(tmp)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(tmp)
        tensors, meta = self._state()
        save_file(tensors, tmp / STATE_TENSORS)
        (tmp / STATE_JSON).write_text(json.dumps(meta, indent=1))
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
        return path

    def _state(self) -> tuple:
        tensors, opt_state = {}, self.optimizer.state_dict()
        for pid, state in opt_state["state"].items():
            for key, value in state.items():
                tensors[f"optimizer.{pid}.{key}"] = value.detach().cpu().contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.stack(torch.cuda.get_rng_state_all())
        np_state = np.random.get_state()
        tensors["rng.numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
        py_version, py_state, py_gauss = random.getstate()
        meta = {
            "step": self.step, "config": asdict(self.cfg), "history": self.history,
            "cost": self.cost.as_dict(), "optimizer_groups": opt_state["param_groups"],
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "rng_numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "rng_python": [py_version, list(py_state), py_gauss],
        }
        return tensors, meta

    def resume(self, path) -> "Trainer":
        """Continue exactly where the checkpoint at ``path`` stopped: weights, optimizer, schedule, RNG."""
        path = Path(path)
        if not (path / STATE_JSON).is_file():
            raise FileNotFoundError(f"{path} holds no trainer state ({STATE_JSON}); it cannot be resumed.")
        meta = json.loads((path / STATE_JSON).read_text())
        tensors = load_file(path / STATE_TENSORS)
        self._load_weights(path)
        opt_state = {"param_groups": meta["optimizer_groups"], "state": {}}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, pid, name = key.split(".", 2)
                opt_state["state"].setdefault(int(pid), {})[name] = value.to(self.device)
        self.optimizer.load_state_dict(opt_state)
        self.scheduler.load_state_dict(meta["scheduler"])
        self.scaler.load_state_dict(meta["scaler"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(list(tensors["rng.cuda"]))
        kind, pos, has_gauss, gauss = meta["rng_numpy"]
        np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
        version, state, py_gauss = meta["rng_python"]
        random.setstate((version, tuple(state), py_gauss))
        self.step, self.history = meta["step"], meta["history"]
        self.cost = RunCost.from_dict(meta["cost"])
        return self

    def _load_weights(self, path: Path) -> None:
        """Load saved weights into the model; only tied copies (e.g. the LM head) may be absent."""
        result = self.model.load_state_dict(load_file(path / "model.safetensors", device=str(self.device)),
                                            strict=False)
        untied_missing = set(result.missing_keys) & set(dict(self.model.named_parameters()))
        if untied_missing or result.unexpected_keys:
            raise ValueError(f"{path} does not match this model: missing {sorted(untied_missing)}, "
                             f"unexpected {sorted(result.unexpected_keys)}")
