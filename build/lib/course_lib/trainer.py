"""The course's trainer: one loop you can read in one sitting.

Like minGPT's, it needs nothing from the model but that ``model(**batch)`` returns an object with
``.loss`` (and ``.logits``, for the accuracy of an evaluation) — so one loop trains a GPT, a BERT,
a classifier or any ``nn.Module``. Two things it asks of the model have defaults that read a
transformer's layers (``model.config.num_hidden_layers``) and can be handed in instead: the
optimizer's parameter groups (``optim.param_groups``: per-layer learning rates, no weight decay on
norms and biases, freezing) and its FLOPs (``costs.flops_profile``). Everything a real run needs is
here, each in a few lines you can step through:

    device + precision   ->  hardware.pick_device, autocast (bf16, or fp16 with a GradScaler), TF32
    data                 ->  a batch order that is a function of (seed, step); collation seeded per
                             (seed, step, process), on this thread or in DataLoader workers
    optimisation         ->  AdamW over parameter groups, warmup + decay, clipping,
                             gradient accumulation, gradual unfreezing
    bookkeeping          ->  evaluation, history for plots, tqdm bar, tokens/s, FLOPs, MFU, energy
    safety               ->  crash-safe checkpoints and exact resume (``checkpoints``)
    scale                ->  DistributedDataParallel under torchrun (``distributed``)

The loop reads nothing back from the device between logging points (``log_every``): a value read
on the host waits for every queued kernel, and a GPU that waits for Python is a GPU that idles.
Its clock runs in windows that end just after each read, so time spent waiting for the GPU is
charged to the run's tokens/s, MFU and energy (nanoGPT's ``t0 = t1``).
"""
import hashlib
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from . import checkpoints, costs, distributed, hardware, optim
from .costs import IGNORE, RunCost
from .errors import CheckpointError, ConfigError
from .hardware import DEVICES, PRECISIONS, autocast, pick_device, pick_precision
from .runtime import seed_everything

# What defines a run: resuming with any of these changed would silently train something else.
RUN_FIELDS = ("batch_size", "grad_accum", "lr", "weight_decay", "warmup_steps", "schedule", "min_lr_ratio",
              "max_grad_norm", "layer_decay", "lr_slice", "unfreeze", "freeze_embeddings", "seed")


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
    device: str | None = None        # None: the size profile's (hardware.default_device); auto | cpu | cuda | mps
    compile: bool = False            # torch.compile the model (GPU speed; checkpoints keep the same keys)
    num_workers: int = 0             # DataLoader processes collating the next batches (0: this thread)
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
        for name in ("warmup_steps", "eval_every", "checkpoint_every", "num_workers"):
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
        if self.device is not None and self.device.split(":")[0] not in DEVICES:
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


def _linear(progress):
    return 1.0 - progress


def _cosine(progress):
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _constant(progress):
    return 1.0


SCHEDULES = {"linear": _linear, "cosine": _cosine, "constant": _constant}


def lr_multiplier(step: int, cfg: TrainConfig) -> float:
    """The share of the peak rate update ``step`` (0-based) uses: linear warmup, then the chosen decay.

    The decay reaches ``min_lr_ratio`` at ``decay_steps`` and stays there. Its end is fixed when a run
    starts (nanoGPT's ``lr_decay_iters``): extending a finished run continues at the final rate, where
    recomputing the decay over the new length would jump back up.
    """
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    horizon = cfg.decay_steps or cfg.max_steps
    progress = (step - cfg.warmup_steps) / max(1, horizon - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * SCHEDULES[cfg.schedule](min(progress, 1.0))


# --- what a batch is worth: targets, tokens, accuracy ----------------------------------------------

def causal_targets(batch: dict) -> int:
    """Targets of a causal LM: position t predicts label t+1, so the first label is never a target."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


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


# --- evaluation: one loop for every model and every caller -----------------------------------------

def model_device(model) -> torch.device:
    return next(model.parameters()).device


def to_device(batch: dict, device: torch.device) -> dict:
    """A batch's tensors on ``device``; from page-locked memory the copy to a GPU overlaps with compute."""
    def move(value):
        if not isinstance(value, torch.Tensor):
            return value
        if device.type == "cuda" and not value.is_pinned():
            value = value.pin_memory()
        return value.to(device, non_blocking=True)
    return {key: move(value) for key, value in batch.items()}


@torch.no_grad()
def forward_batches(model, examples, collate, batch_size: int = 64, precision: str = "fp32", seed: int | None = None):
    """Yield (batch, outputs) for ``examples`` in order: the model in eval mode, each batch on its device.

    The one evaluation loop of the course: the trainer's evaluation, GPT-1's, the classifiers'
    predictions and the command line's all run through it, so none can feed a batch on one device to
    a model on another. ``seed``: collation with random draws (masked-LM validation) is seeded per
    batch, so every evaluation of a run fills the same blanks and the training draws are untouched.
    """
    model.eval()
    device = model_device(model)
    for i in range(0, len(examples), batch_size):
        chunk = examples[i:i + batch_size]
        batch = to_device(collate(chunk) if seed is None else seeded(collate, chunk, draw_seed(seed, "eval", i)),
                          device)
        with autocast(device, precision):
            outputs = model(**batch)
        yield batch, outputs


def evaluate(model, data, collate, batch_size: int = 64, accuracy_fn=None, precision: str = "fp32",
             targets=costs.labelled, seed: int | None = None) -> dict:
    """Mean loss per target (and accuracy, given ``accuracy_fn``) over ``data``, in order."""
    loss_sum, counted_targets, correct, counted = 0.0, 0, 0, 0
    for batch, out in forward_batches(model, data, collate, batch_size, precision, seed):
        n = targets(batch)
        if n == 0:
            continue
        loss_sum += out.loss.float().item() * n
        counted_targets += n
        if accuracy_fn:
            c, k = accuracy_fn(out.logits.float(), batch["labels"])
            correct, counted = correct + c, counted + k
    result = {"loss": loss_sum / counted_targets}
    if accuracy_fn:
        result["accuracy"] = correct / counted
    return result


# --- the data: which examples each step trains on, collated with seeded random draws ----------------

def draw_seed(*parts) -> int:
    """A 63-bit seed from any parts (run seed, step, process, ...): distinct parts, unrelated streams."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "little") >> 1


def seeded(collate, examples: list, seed: int) -> dict:
    """``collate(examples)`` with torch's random generator seeded by ``seed``, and given back as it was after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return collate(examples)


class BatchOrder:
    """The global batch of each step: one seeded permutation of the data per epoch.

    A pure function of (seed, step), so a resumed run, every process and every DataLoader worker
    agree on it without talking to each other.
    """

    def __init__(self, n_examples: int, batch_size: int, seed: int):
        self.n_examples, self.batch_size, self.seed = n_examples, batch_size, seed
        self.per_epoch = n_examples // batch_size
        self._epoch, self._permutation = None, None

    def __call__(self, step: int) -> list:
        epoch, offset = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._permutation, self._epoch = torch.randperm(self.n_examples, generator=generator), epoch
        return self._permutation[offset * self.batch_size:(offset + 1) * self.batch_size].tolist()


class StepBatches(torch.utils.data.Dataset):
    """Item i: this process's micro-batches of step ``first + i``, collated on the CPU.

    Random draws in collation (masked-LM masks, corrupted spans) are seeded by (seed, step, process,
    micro-batch): processes draw different masks, a resumed run draws the same ones again, and the
    collation can run in DataLoader worker processes, ahead of the GPU, without changing a number.
    """

    def __init__(self, data: list, collate, cfg: TrainConfig, rank: int, world: int, first: int):
        self.data, self.collate, self.cfg, self.rank, self.world, self.first = data, collate, cfg, rank, world, first
        self.order = BatchOrder(len(data), cfg.batch_size, cfg.seed)

    def __len__(self) -> int:
        return max(0, self.cfg.max_steps - self.first)

    def examples(self, step: int) -> list:
        """This process's share of the global batch of ``step`` (all of it with one process)."""
        indices = self.order(step)
        share = len(indices) // self.world
        return [self.data[i] for i in indices[self.rank * share:(self.rank + 1) * share]]

    def __getitem__(self, i: int) -> list:
        step, examples = self.first + i, self.examples(self.first + i)
        micro = len(examples) // self.cfg.grad_accum
        return [seeded(self.collate, examples[k:k + micro], draw_seed(self.cfg.seed, step, self.rank, k // micro))
                for k in range(0, len(examples), micro)]


class Trainer:
    """Train ``model`` on ``train_data`` (a list of examples) batched by ``collate``.

    ``collate(list_of_examples)`` returns a dict of CPU tensors including ``labels``; its random
    draws come from torch's global generator, which the trainer seeds per step.
    ``accuracy_fn(logits, labels) -> (correct, counted)`` adds accuracy to evaluation.
    ``targets(batch)`` counts a batch's targets, the weight of its loss in a step of several
    micro-batches (default: labelled positions; ``causal_targets`` for a causal LM).
    ``param_groups``: the optimizer's groups (default ``optim.param_groups`` by the config's rates).
    ``run`` describes what is being trained (e.g. architecture, corpus); it is saved with every
    checkpoint so that whoever resumes it can check they continue the run they meant.
    """

    def __init__(self, model, train_data, collate, config: TrainConfig, eval_data=None, accuracy_fn=None,
                 out_dir=None, tokenizer=None, run: dict | None = None, targets=costs.labelled, param_groups=None):
        self.cfg = config
        self.device = distributed.device_for(pick_device(config.device))
        self.world = distributed.init(self.device)
        self.rank = distributed.rank()
        self.precision = pick_precision(config.precision, self.device)
        self.model = model.to(self.device)
        self.train_data, self.eval_data, self.collate = train_data, eval_data, collate
        self.accuracy_fn, self.tokenizer, self.run, self.targets = accuracy_fn, tokenizer, run or {}, targets
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
        seed_everything(config.seed + self.rank)  # dropout differs between processes; rank 0 draws as one process
        if config.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores (10 mantissa bits)
            torch.backends.cudnn.allow_tf32 = True
        groups = param_groups if param_groups is not None else optim.param_groups(
            model, config.lr, config.weight_decay, config.layer_decay, config.lr_slice)
        # fused: one kernel updates every weight, instead of a Python loop of ~10 small ops per tensor
        # (several times faster on CPU and GPU; transformers.Trainer's default too).
        self.optimizer = torch.optim.AdamW(groups, fused=self.device.type in ("cpu", "cuda"))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_multiplier(s, self.cfg))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.forward_model = self._wrap(self.model)
        self.step = 0
        self.history = {"train": [], "eval": []}
        self.cost = RunCost()
        self._flops = costs.flops_profile(self.model)  # walks the modules: again only when what trains changes

    def _wrap(self, model):
        """What the forward pass runs: the model, compiled and/or wrapped for several processes."""
        if self.cfg.compile:
            model = torch.compile(model)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return model

    # --- data ---------------------------------------------------------------------------------
    def step_batches(self, first: int) -> StepBatches:
        """Every step's micro-batches from step ``first`` on (``StepBatches``)."""
        return StepBatches(self.train_data, self.collate, self.cfg, self.rank, self.world, first)

    def _batches(self):
        """The micro-batches of each remaining step, in order: collated here, or ahead by worker processes."""
        steps = self.step_batches(self.step)
        if not self.cfg.num_workers:
            return (steps[i] for i in range(len(steps)))
        # its own generator: seeding the workers must not take a draw from the one dropout uses
        return iter(torch.utils.data.DataLoader(steps, batch_size=None, num_workers=self.cfg.num_workers,
                                                pin_memory=self.device.type == "cuda",
                                                generator=torch.Generator().manual_seed(self.cfg.seed)))

    def _autocast(self):
        return autocast(self.device, self.precision)

    # --- one optimizer step -----------------------------------------------------------------
    def host_side(self, batches: list) -> tuple:
        """(targets per micro-batch, tokens, FLOPs) of a step, counted on the CPU copies: no wait for the device."""
        return ([self.targets(b) for b in batches], sum(costs.real_tokens(b) for b in batches),
                sum(self._flops.of(b) for b in batches))

    def train_step(self, batches: list) -> tuple:
        """Forward and backward over a step's micro-batches (CPU tensors), then one optimizer update.

        Each micro-batch loss is weighted by its share of the step's targets (over all processes),
        so the gradient equals that of one big batch even when micro-batches hold different numbers
        of targets. Returns (loss as a device tensor, tokens, FLOPs, learning rate) of this process's
        share; the learning rate is the one this update used.
        """
        counts, tokens, flops = self.host_side(batches)
        total = sum(counts) if self.world == 1 else distributed.sum_over_processes(
            torch.tensor(float(sum(counts)), dtype=torch.float64, device=self.device)).float()  # stays on the device
        step_loss = torch.zeros((), device=self.device)
        for k, (batch, n) in enumerate(zip(batches, counts)):
            if n == 0 and self.world == 1:
                continue  # e.g. no token happened to be masked: nothing to learn, and its mean loss is NaN
            last = k == len(batches) - 1
            sync = self.forward_model.no_sync() if self.world > 1 and not last else nullcontext()
            with sync:
                with self._autocast():
                    out = self.forward_model(**to_device(batch, self.device))
                    loss = out.loss * (n / total) if n else out.logits.sum() * 0.0  # keeps every process in step
                # DistributedDataParallel averages gradients over processes; the weights above already sum to 1
                self.scaler.scale(loss * self.world if self.world > 1 else loss).backward()
            step_loss += loss.detach().float()
        self.scaler.unscale_(self.optimizer)
        if self.cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        lr = self.scheduler.get_last_lr()[-1]  # the rate of this update, before the schedule moves on
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return step_loss, tokens, flops, lr

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
        self._flops = costs.flops_profile(self.model)  # frozen weights need no backward pass

    # --- the loop -----------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train until ``max_steps``; returns the history (also kept on ``self.history``).

        A run that has already reached ``max_steps`` is left as it is: nothing is trained, evaluated
        or saved again.
        """
        if self.step >= self.cfg.max_steps:
            return self.history
        self.model.train()
        self._current_freeze()
        main = distributed.is_main()
        # At most one redraw a second: a bar redrawn every step sends thousands of messages from a long
        # run in a notebook, more than Jupyter's output channel buffers (it then drops the cell's output).
        bar = tqdm(total=self.cfg.max_steps, initial=self.step, disable=not (self.cfg.progress and main),
                   desc="train", mininterval=1.0)
        self._energy = costs.EnergyMeter(self.device)
        self._peak = hardware.peak_flops(self.device, self.precision)
        self._clock = time.perf_counter()
        pending, tokens, flops = [], 0, 0.0
        for batches in self._batches():
            self._apply_unfreeze()
            loss, step_tokens, step_flops, lr = self.train_step(batches)
            self.step += 1
            pending.append((self.step, loss, lr))
            tokens, flops = tokens + step_tokens, flops + step_flops
            last = self.step == self.cfg.max_steps
            evaluate_now = self.cfg.eval_every and self.step % self.cfg.eval_every == 0 and not last
            save_now = self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0 and not last
            if self.step % self.cfg.log_every == 0 or last or evaluate_now or save_now:
                self._log(pending, tokens, flops, bar)
                pending, tokens, flops = [], 0, 0.0
                if evaluate_now:
                    self._log_eval()
                if save_now and self.out_dir:
                    self.save(self.out_dir)
        bar.close()
        self._log_eval()
        if self.out_dir:
            self.save(self.out_dir)
        self._charge(0, 0.0)  # the final evaluation and save are part of the run's wall clock too
        return self.history

    def _lap(self) -> float:
        """Seconds since the previous lap: windows that together cover the whole wall clock of ``fit``."""
        now = time.perf_counter()
        seconds, self._clock = now - self._clock, now
        return seconds

    def _log(self, pending: list, tokens: int, flops: float, bar) -> None:
        """Read the pending losses back from the device — the loop's one wait for it — then charge the window."""
        losses = torch.stack([loss for _, loss, _ in pending])
        values = distributed.sum_over_processes(losses).tolist()
        self._charge(tokens, flops)
        for (step, _, lr), loss in zip(pending, values):
            self.history["train"].append({"step": step, "loss": loss, "lr": lr})
        bar.set_postfix(loss=f"{values[-1]:.3f}", tok_s=f"{self.cost.tokens_per_second:,.0f}", refresh=False)
        bar.update(len(pending))

    def _charge(self, tokens: int, flops: float) -> None:
        """Add the window that ends now to the run's cost: tokens, FLOPs and energy of every process."""
        seconds = self._lap()
        joules = self._energy.joules(seconds)
        if self.world > 1:
            totals = torch.tensor([float(tokens), flops, joules], dtype=torch.float64, device=self.device)
            tokens, flops, joules = distributed.sum_over_processes(totals).tolist()
        self.cost.add(int(tokens), flops, seconds, self.device, energy_joules=joules, energy_method=self._energy.method,
                      peak_flops=self._peak, processes=self.world)

    def _log_eval(self) -> None:
        if self.eval_data is not None and distributed.is_main():
            self.history["eval"].append({"step": self.step, **self.evaluate()})
            self.model.train()

    def evaluate(self, data=None) -> dict:
        """Loss (and accuracy, given ``accuracy_fn``) on ``data``, by default the eval set."""
        data = self.eval_data if data is None else data
        return evaluate(self.model, data, self.collate, self.cfg.eval_batch_size, self.accuracy_fn, self.precision,
                        self.targets, seed=self.cfg.seed)

    # --- checkpoints ----------------------------------------------------------------------------
    def save(self, path):
        """Write model, tokenizer and the whole trainer state to ``path`` (crash-safe; rank 0 writes)."""
        tensors, meta = self.state_dict()
        if distributed.is_main():
            checkpoints.write(path, self.model, self.tokenizer, tensors, meta)
        distributed.barrier()
        return path

    def state_dict(self) -> tuple:
        """(tensors, meta): everything a resumed run needs besides the weights, every process's random state included."""
        tensors, opt_state = {}, self.optimizer.state_dict()
        for pid, state in opt_state["state"].items():
            for key, value in state.items():
                tensors[f"optimizer.{pid}.{key}"] = value.detach().cpu().contiguous()
        rng_tensors, rng_meta = checkpoints.rng_states(distributed.gather(checkpoints.rng_state(self.device)))
        meta = {"step": self.step, "config": asdict(self.cfg), "run": self.run, "history": self.history,
                "cost": self.cost.as_dict(), "optimizer_groups": opt_state["param_groups"],
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), **rng_meta}
        return {**tensors, **rng_tensors}, meta

    def resume(self, path, state: tuple | None = None, weights: bool = True) -> "Trainer":
        """Continue the run saved at ``path``: weights, optimizer, schedule, random states, history, cost.

        With the same ``max_steps`` an interrupted run continues exactly; with a larger one a finished
        run is extended, keeping the learning-rate schedule it started with (see ``lr_multiplier``).
        A checkpoint of another run (other model, data, or optimisation settings) is refused.
        ``state``: ``checkpoints.read_state(path)`` when the caller has read it already; ``weights=False``
        when the model was loaded from ``path`` already (``from_pretrained``).
        """
        if state is None:
            checkpoints.recover(path)  # a save that a crash interrupted is finished or undone first
            state = checkpoints.read_state(path)
        tensors, meta = state
        self._check_same_run(path, meta)
        if weights:
            checkpoints.load_weights(self.model, path, self.device)
        opt_state = {"param_groups": meta["optimizer_groups"], "state": {}}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, pid, name = key.split(".", 2)
                opt_state["state"].setdefault(int(pid), {})[name] = value.to(self.device)
        try:
            self.optimizer.load_state_dict(opt_state)
        except ValueError as err:
            raise CheckpointError(f"{path} holds the optimizer of another model ({err})") from None
        self.scheduler.load_state_dict(meta["scheduler"])
        if meta["scaler"] and self.scaler.is_enabled():  # a bf16 or fp32 run has no loss scale to restore
            self.scaler.load_state_dict(meta["scaler"])
        if not checkpoints.set_rng_state(tensors, meta, self.device, self.rank):
            seed_everything(draw_seed(self.cfg.seed, meta["step"], self.rank))  # a process the run did not have
        self.step, self.history = meta["step"], meta["history"]
        self.cost = RunCost.from_dict(meta["cost"])
        return self

    def _check_same_run(self, path, meta: dict) -> None:
        """Refuse to continue a checkpoint whose run differs from this one; adopt its decay horizon."""
        saved, asked = dict(meta["config"]), asdict(self.cfg)
        saved["unfreeze"] = {int(step): n for step, n in saved.get("unfreeze", {}).items()}  # JSON keys are strings
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
