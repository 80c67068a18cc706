"""The course's trainer: one loop you can read in one sitting.

Like minGPT's, it knows nothing about the model except that ``model(**batch)`` returns an
object with ``.loss`` and ``.logits`` — so one loop trains a GPT, a BERT and a classifier.
Everything a real run needs is here, each in a few lines you can step through:

    device + precision   ->  pick_device, autocast (bf16, or fp16 with a GradScaler), TF32
    optimisation         ->  AdamW over optim.param_groups, warmup + decay, clipping,
                             gradient accumulation, gradual unfreezing
    bookkeeping          ->  evaluation, history for plots, tqdm bar, tokens/s, FLOPs, MFU, energy
    safety               ->  atomic checkpoints and exact resume (``checkpoints``)
    scale                ->  DistributedDataParallel under torchrun (``distributed``)

The loop reads nothing back from the GPU between logging points (``log_every``): a value read on
the host waits for every queued kernel, and a GPU that waits for Python is a GPU that idles.
"""
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from . import checkpoints, costs, distributed, optim
from .costs import RunCost
from .errors import CheckpointError, ConfigError
from .runtime import seed_everything

IGNORE = -100  # the label value PyTorch's cross-entropy skips: "nothing to predict here"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
# What defines a run: resuming with any of these changed would silently train something else.
RUN_FIELDS = ("batch_size", "grad_accum", "lr", "weight_decay", "warmup_steps", "schedule", "min_lr_ratio",
              "layer_decay", "lr_slice", "freeze_embeddings", "seed")


@dataclass
class TrainConfig:
    max_steps: int = 100
    batch_size: int = 32             # examples per optimizer step (all processes), in grad_accum micro-batches
    grad_accum: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 0
    schedule: str = "linear"         # linear | cosine | constant (after warmup)
    decay_steps: int | None = None   # where the decay ends (None: max_steps); fixed when a run starts, so
    min_lr_ratio: float = 0.0        # an extended run goes on at lr x min_lr_ratio instead of jumping back up
    max_grad_norm: float | None = 1.0
    layer_decay: float | None = None  # lr x decay^(distance from the head), see optim.py
    lr_slice: float | None = None    # embeddings at lr x lr_slice, body between, head at lr (ULMFiT)
    unfreeze: dict = field(default_factory=dict)  # {step: n top groups trainable (None = all)}
    freeze_embeddings: bool = False  # keep the input embeddings as they are (e.g. skip-gram vectors)
    precision: str = "auto"          # auto | fp32 | bf16 | fp16
    device: str = "auto"             # auto | cpu | cuda | mps
    compile: bool = False            # torch.compile the model (GPU speed; checkpoints keep the same keys)
    log_every: int = 1               # steps between reads of the loss from the device (history keeps all)
    eval_every: int = 0              # 0: evaluate once, at the end
    eval_batch_size: int = 64
    checkpoint_every: int = 0        # 0: only when fit() ends (if out_dir is set)
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        positive = {"max_steps": self.max_steps, "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                    "log_every": self.log_every, "eval_batch_size": self.eval_batch_size}
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, not {value}")
        for name in ("warmup_steps", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, not {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, not {self.lr}")
        if self.batch_size % self.grad_accum:
            raise ConfigError(f"batch_size {self.batch_size} is not divisible by grad_accum {self.grad_accum}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {sorted(SCHEDULES)}, not {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        if self.device.split(":")[0] not in DEVICES:
            raise ConfigError(f"device must be one of {DEVICES}, not {self.device!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"min_lr_ratio must be between 0 and 1, not {self.min_lr_ratio}")
        if self.layer_decay is not None and not 0.0 < self.layer_decay <= 1.0:
            raise ConfigError(f"layer_decay must be in (0, 1], not {self.layer_decay}")
        if self.lr_slice is not None and not 0.0 < self.lr_slice <= 1.0:
            raise ConfigError(f"lr_slice must be in (0, 1], not {self.lr_slice}")
        if self.layer_decay and self.lr_slice:
            raise ConfigError("choose layer_decay (per layer) or lr_slice (per part), not both")
        if self.decay_steps is not None and self.decay_steps <= self.warmup_steps:
            raise ConfigError(f"decay_steps {self.decay_steps} must be larger than warmup_steps {self.warmup_steps}")
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
    """``auto``: bf16 on GPUs with native bf16, fp16 (with a loss scaler) on older GPUs, fp32 elsewhere.

    CPU autocast is rarely faster, and emulated bf16 (V100, T4) is slower than fp16.
    """
    if name != "auto":
        return name
    if device.type != "cuda":
        return "fp32"
    return "bf16" if costs.native_bf16(device) else "fp16"


def autocast(device: torch.device, precision: str):
    """The context that runs a forward pass in ``precision`` (bf16/fp16) on ``device``; fp32 runs as is."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _linear(progress):
    return 1.0 - progress


def _cosine(progress):
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _constant(progress):
    return 1.0


SCHEDULES = {"linear": _linear, "cosine": _cosine, "constant": _constant}


def lr_multiplier(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to the peak, then the chosen decay to ``min_lr_ratio`` at ``decay_steps``; flat after.

    The decay's end is fixed when a run starts (nanoGPT's ``lr_decay_iters``): extending a finished
    run continues at the final rate, where recomputing the decay over the new length would jump back up.
    """
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    horizon = cfg.decay_steps or cfg.max_steps
    progress = (step - cfg.warmup_steps) / max(1, horizon - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * SCHEDULES[cfg.schedule](min(progress, 1.0))


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple:
    """(correct, counted) over positions whose label is not -100 (classification and MLM).

    ``logits`` cover every position (..., vocab), or only the labelled ones (n_labelled, vocab), as
    a masked LM with a sparse output layer returns them.
    """
    keep = labels != IGNORE
    predictions = logits.argmax(-1)
    if predictions.shape == labels.shape:
        predictions = predictions[keep]
    return (predictions == labels[keep]).sum().item(), keep.sum().item()


def next_token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple:
    """Accuracy for causal LMs, whose position t predicts the label at t+1."""
    return accuracy(logits[:, :-1], labels[:, 1:])


def count_targets(batch: dict) -> int:
    return int((batch["labels"] != IGNORE).sum())


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

    ``collate(list_of_examples)`` returns a dict of CPU tensors including ``labels``.
    ``accuracy_fn(logits, labels) -> (correct, counted)`` adds accuracy to evaluation.
    ``run`` describes what is being trained (e.g. architecture, corpus); it is saved with every
    checkpoint so that whoever resumes it can check they continue the run they meant.
    """

    def __init__(self, model, train_data, collate, config: TrainConfig, eval_data=None,
                 accuracy_fn=None, out_dir=None, tokenizer=None, run: dict | None = None):
        self.cfg = config
        self.device = distributed.device_for(pick_device(config.device))
        self.world = distributed.init(self.device)
        self.precision = pick_precision(config.precision, self.device)
        self.model = model.to(self.device)
        self.train_data, self.eval_data, self.collate = train_data, eval_data, collate
        self.accuracy_fn, self.tokenizer, self.run = accuracy_fn, tokenizer, run or {}
        self.out_dir = out_dir
        if len(train_data) < config.batch_size:
            raise ConfigError(f"the training data has {len(train_data)} examples, fewer than one batch of "
                              f"{config.batch_size}: lower the batch size or add data")
        if self.world > 1 and config.unfreeze:
            raise ConfigError("gradual unfreezing does not run under torchrun: DistributedDataParallel fixes at the "
                              "start which weights it synchronises; train on one process, or without unfreeze")
        if config.batch_size % (self.world * config.grad_accum):
            raise ConfigError(f"batch_size {config.batch_size} does not split into {self.world} processes x "
                              f"{config.grad_accum} micro-batches")
        seed_everything(config.seed)
        if config.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores (10 mantissa bits)
            torch.backends.cudnn.allow_tf32 = True
        # fused: one kernel updates every weight, instead of a Python loop of ~10 small ops per tensor
        # (several times faster on CPU and GPU; transformers.Trainer's default too).
        self.optimizer = torch.optim.AdamW(
            optim.param_groups(model, config.lr, config.weight_decay, config.layer_decay, config.lr_slice),
            fused=self.device.type in ("cpu", "cuda"))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_multiplier(s, self.cfg))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.forward_model = self._wrap(self.model)
        self.step = 0
        self.history = {"train": [], "eval": []}
        self.cost = RunCost()
        self._order_epoch, self._order = None, None
        self._flops = costs.flops_profile(self.model)  # walks the modules once, not every step

    def _wrap(self, model):
        """What the forward pass runs: the model, compiled and/or wrapped for several processes."""
        if self.cfg.compile:
            model = torch.compile(model)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return model

    # --- data order: a pure function of (seed, step), so a resumed run sees the same batches ---
    def batch_indices(self, step: int) -> list:
        """The global batch of ``step``: one seeded permutation per epoch, drawn once per epoch."""
        per_epoch = len(self.train_data) // self.cfg.batch_size
        epoch, offset = divmod(step, per_epoch)
        if epoch != self._order_epoch:
            generator = torch.Generator().manual_seed(self.cfg.seed + epoch)
            self._order, self._order_epoch = torch.randperm(len(self.train_data), generator=generator), epoch
        return self._order[offset * self.cfg.batch_size:(offset + 1) * self.cfg.batch_size].tolist()

    def local_examples(self, step: int) -> list:
        """This process's share of the global batch (all of it without torchrun)."""
        indices = self.batch_indices(step)
        share = len(indices) // self.world
        rank = distributed.rank() if self.world > 1 else 0
        return [self.train_data[i] for i in indices[rank * share:(rank + 1) * share]]

    def _to_device(self, batch: dict) -> dict:
        pin = self.device.type == "cuda"  # page-locked memory lets the copy overlap with compute
        return {k: (v.pin_memory() if pin else v).to(self.device, non_blocking=True) for k, v in batch.items()}

    def _autocast(self):
        return autocast(self.device, self.precision)

    # --- one optimizer step -----------------------------------------------------------------
    def train_step(self, examples: list) -> tuple:
        """Forward and backward over ``grad_accum`` micro-batches, then one optimizer update.

        Each micro-batch loss is weighted by its share of the step's targets (over all processes),
        so the gradient equals that of one big batch even when micro-batches hold different numbers
        of targets. Targets are counted on the CPU before the copy, so counting never waits for the
        GPU. Batches are collated here, on the main thread: the loop does not wait for the GPU, so
        collating the next step overlaps with the GPU computing this one; worker processes (a
        ``DataLoader``) would draw the masks from random states a resumed run could not replay.
        Returns (loss as a device tensor, tokens, FLOPs) of this process's share.
        """
        micro = len(examples) // self.cfg.grad_accum
        batches = [self.collate(examples[i:i + micro]) for i in range(0, len(examples), micro)]
        counts = [count_targets(b) for b in batches]
        total = sum(counts) if self.world == 1 else int(distributed.sum_over_processes(
            torch.tensor(float(sum(counts)), device=self.device)))
        step_loss = torch.zeros((), device=self.device)
        for k, (batch, n) in enumerate(zip(batches, counts)):
            if n == 0 and self.world == 1:
                continue  # e.g. no token happened to be masked: nothing to learn, and its mean loss is NaN
            last = k == len(batches) - 1
            sync = self.forward_model.no_sync() if self.world > 1 and not last else nullcontext()
            with sync:
                with self._autocast():
                    out = self.forward_model(**self._to_device(batch))
                    loss = out.loss * n / total if n else out.logits.sum() * 0.0  # keeps every process in step
                # DistributedDataParallel averages gradients over processes; the weights above already sum to 1
                self.scaler.scale(loss * self.world if self.world > 1 else loss).backward()
            step_loss += loss.detach().float()
        self.scaler.unscale_(self.optimizer)
        if self.cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return step_loss, *self._count(batches)

    def _count(self, batches: list) -> tuple:
        """(tokens, training FLOPs) of a step's micro-batches, counted on the CPU copies."""
        tokens = [count_tokens(b) for b in batches]
        flops = [self._flops.batch(n, b["input_ids"].shape[1], count_targets(b)) for n, b in zip(tokens, batches)]
        return sum(tokens), sum(flops)

    def _apply_unfreeze(self) -> None:
        if self.step in self.cfg.unfreeze:
            self._freeze_to_entry(self.step)
        elif self.step == 0 and self.cfg.unfreeze:
            raise ConfigError("the unfreeze schedule must say what trains at step 0")

    def _current_freeze(self) -> None:
        """After a resume, re-apply the latest unfreeze entry at or before the current step."""
        past = [s for s in self.cfg.unfreeze if s <= self.step]
        if past:
            self._freeze_to_entry(max(past))

    def _freeze_to_entry(self, step: int) -> None:
        optim.freeze_to(self.model, optim.trainable_groups_to_k(self.model, self.cfg.unfreeze[step]))
        if self.cfg.freeze_embeddings:
            self.model.get_input_embeddings().weight.requires_grad_(False)

    # --- the loop -----------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train until ``max_steps``; returns the history (also kept on ``self.history``)."""
        self.model.train()
        self._current_freeze()
        main = distributed.is_main()
        # At most one redraw a second: a bar redrawn every step sends thousands of messages from a long
        # run in a notebook, more than Jupyter's output channel buffers (it then drops the cell's output).
        bar = tqdm(total=self.cfg.max_steps, initial=self.step, disable=not (self.cfg.progress and main),
                   desc="train", mininterval=1.0)
        self._energy = costs.EnergyMeter(self.device)
        pending, tokens, flops, start = [], 0, 0.0, time.perf_counter()
        while self.step < self.cfg.max_steps:
            self._apply_unfreeze()
            loss, step_tokens, step_flops = self.train_step(self.local_examples(self.step))
            self.step += 1
            pending.append((self.step, loss, self.scheduler.get_last_lr()[-1]))
            tokens, flops = tokens + step_tokens, flops + step_flops
            evaluate_now = self.cfg.eval_every and self.step % self.cfg.eval_every == 0
            save_now = self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0
            if self.step % self.cfg.log_every == 0 or self.step == self.cfg.max_steps or evaluate_now or save_now:
                self._log(pending, tokens, flops, time.perf_counter() - start, bar)
                pending, tokens, flops = [], 0, 0.0
                if evaluate_now and self.step < self.cfg.max_steps:
                    self._log_eval()
                if save_now and self.out_dir:
                    self.save(self.out_dir)
                start = time.perf_counter()
        bar.close()
        self._log_eval()
        if self.out_dir:
            self.save(self.out_dir)
        return self.history

    def _log(self, pending: list, tokens: int, flops: float, seconds: float, bar) -> None:
        """Read the pending losses back from the device: the loop's one wait for the GPU.

        Losses, tokens, FLOPs and energy are summed over processes; the time since the last read,
        measured after that wait, is charged to the run's cost.
        """
        losses = distributed.sum_over_processes(torch.stack([loss for _, loss, _ in pending])).cpu()
        joules = self._energy.joules(seconds)
        if self.world > 1:
            totals = torch.tensor([float(tokens), flops, joules], device=self.device)
            tokens, flops, joules = distributed.sum_over_processes(totals).cpu().tolist()
        self.cost.add(int(tokens), flops, seconds, self.device, energy_joules=joules,
                      energy_method=self._energy.method)
        for (step, _, lr), loss in zip(pending, losses.tolist()):
            self.history["train"].append({"step": step, "loss": loss, "lr": lr})
        bar.set_postfix(loss=f"{self.history['train'][-1]['loss']:.3f}", tok_s=f"{self.cost.tokens_per_second:,.0f}", refresh=False)
        bar.update(len(pending))

    def _log_eval(self) -> None:
        if self.eval_data is not None and distributed.is_main():
            self.history["eval"].append({"step": self.step, **self.evaluate()})
            self.model.train()

    def evaluate(self, data=None) -> dict:
        """Loss (and accuracy, given ``accuracy_fn``) on ``data``, by default the eval set."""
        data = self.eval_data if data is None else data
        with self._autocast():
            return evaluate(self.model, data, self.collate, self.cfg.eval_batch_size, self.accuracy_fn)

    # --- checkpoints ----------------------------------------------------------------------------
    def save(self, path):
        """Write model, tokenizer and the whole trainer state to ``path`` (atomically; rank 0 only)."""
        if distributed.is_main():
            checkpoints.write(path, self.model, self.tokenizer, *self.state_dict())
        distributed.barrier()
        return path

    def state_dict(self) -> tuple:
        """(tensors, meta): everything a resumed run needs besides the weights."""
        tensors, opt_state = {}, self.optimizer.state_dict()
        for pid, state in opt_state["state"].items():
            for key, value in state.items():
                tensors[f"optimizer.{pid}.{key}"] = value.detach().cpu().contiguous()
        rng_tensors, rng_meta = checkpoints.rng_state(self.device)
        meta = {"step": self.step, "config": asdict(self.cfg), "run": self.run, "history": self.history,
                "cost": self.cost.as_dict(), "optimizer_groups": opt_state["param_groups"],
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), **rng_meta}
        return {**tensors, **rng_tensors}, meta

    def resume(self, path) -> "Trainer":
        """Continue the run saved at ``path``: weights, optimizer, schedule, RNG, history, cost.

        With the same ``max_steps`` an interrupted run continues exactly; with a larger one a finished
        run is extended, keeping the learning-rate schedule it started with (see ``lr_multiplier``).
        A checkpoint of another run (other model, data, or optimisation settings) is refused.
        """
        tensors, meta = checkpoints.read_state(path)
        self._check_same_run(path, meta)
        checkpoints.load_weights(self.model, path, self.device)
        opt_state = {"param_groups": meta["optimizer_groups"], "state": {}}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, pid, name = key.split(".", 2)
                opt_state["state"].setdefault(int(pid), {})[name] = value.to(self.device)
        self.optimizer.load_state_dict(opt_state)
        self.scheduler.load_state_dict(meta["scheduler"])
        if meta["scaler"] and self.scaler.is_enabled():  # a bf16 or fp32 run has no loss scale to restore
            self.scaler.load_state_dict(meta["scaler"])
        checkpoints.set_rng_state(tensors, meta, self.device)
        self.step, self.history = meta["step"], meta["history"]
        self.cost = RunCost.from_dict(meta["cost"])
        return self

    def _check_same_run(self, path, meta: dict) -> None:
        """Refuse to continue a checkpoint whose run differs from this one; adopt its decay horizon."""
        saved, asked = meta["config"], asdict(self.cfg)
        checkpoints.require_same_run(path, {**meta.get("run", {}), **saved},
                                     {**self.run, **{key: asked[key] for key in RUN_FIELDS}})
        horizon = saved.get("decay_steps") or saved["max_steps"]
        if self.cfg.decay_steps not in (None, horizon):
            raise CheckpointError(f"{path} holds a run whose learning rate decays until step {horizon}, fixed when "
                                  f"it started (asked: decay_steps {self.cfg.decay_steps}); continue it without "
                                  "decay_steps, or write to another directory.")
        self.cfg.decay_steps = horizon
        if self.cfg.max_steps > horizon and lr_multiplier(self.cfg.max_steps - 1, self.cfg) == 0:
            raise ConfigError(f"{path} holds a run whose learning rate decays to 0 at step {horizon}: steps after it "
                              "would train nothing. Continue it only up to that step, or start a new run with "
                              "min_lr_ratio > 0 (e.g. 0.1) to be able to extend it.")
