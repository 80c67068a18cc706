"""What training costs: FLOPs, hardware utilisation, energy and CO2.

FLOPs follow the standard accounting (Kaplan et al. 2020; Chowdhery et al. 2022, app. B): a matmul
weight costs 2 FLOPs per token forward, 2 more backward for the gradient of its input and 2 for its
own gradient, plus the attention scores, 4·hidden·seq_len per token and layer forward and twice that
backward. Backward work is charged only where autograd does it: a frozen weight needs no gradient
of its own, and nothing below the lowest trainable layer needs an input gradient — so a classifier
whose body is frozen costs about a third of one that trains everything. A masked LM that runs its
output layer only where there is a label (ModernBERT's ``sparse_prediction``) pays for that layer
per predicted position, and a classifier head on a pooled vector once per sequence.

Energy is measured where the GPU counts it (NVML's energy counter, read through the optional
``nvidia-ml-py`` package) and estimated otherwise: board power × time on a GPU,
``CPU_WATTS_PER_THREAD`` per busy thread on a CPU. Every figure carries the method that produced
it, so nobody mistakes an estimate for a measurement.
"""
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import torch

from . import hardware, optim
from .errors import ConfigError

CARBON_ENV = "COURSE_CARBON_INTENSITY"
WORLD_CARBON_INTENSITY = 0.475  # kg CO2e per kWh, world average electricity (IEA, 2019)
CPU_WATTS_PER_THREAD = 10.0     # a busy server core; laptop cores draw less, desktop more
UNLISTED_GPU_WATTS = 300.0      # a mid-range data-centre board, for GPUs missing from hardware.GPU_SPECS
IGNORE = -100                   # the label value cross-entropy skips: "nothing to predict here"


def carbon_intensity() -> float:
    """kg CO2e per kWh of the local grid (``COURSE_CARBON_INTENSITY``; default: world average)."""
    value = os.environ.get(CARBON_ENV, "").strip()
    if not value:
        return WORLD_CARBON_INTENSITY
    try:
        intensity = float(value)
    except ValueError:
        intensity = math.nan
    if not 0 <= intensity < math.inf:
        raise ConfigError(f"{CARBON_ENV}={value!r} is not a number of kg CO2e per kWh (e.g. 0.4); "
                          "set it to one, or unset it for the world average")
    return intensity


# --- what a batch holds ---------------------------------------------------------------------

def real_tokens(batch: dict) -> int:
    """Tokens that are text, not padding (every position without an attention mask; without token ids,
    one per example)."""
    mask = batch.get("attention_mask")
    if mask is not None:
        return int(mask.sum())
    return batch["input_ids"].numel() if "input_ids" in batch else len(next(iter(batch.values())))


def real_rows(batch: dict) -> int:
    """Sequences (or examples) in a batch."""
    return len(batch["input_ids"] if "input_ids" in batch else next(iter(batch.values())))


def labelled(batch: dict) -> int:
    """Positions with a label to predict (not ``IGNORE``)."""
    return int((batch["labels"] != IGNORE).sum())


# --- FLOPs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlopsProfile:
    """A model's training FLOPs by unit of work, so a batch is priced by arithmetic alone.

    ``flops_profile`` walks the modules once; a trainer keeps the result until what trains changes.
    """
    per_token: float             # the weights every token goes through
    per_prediction: float = 0.0  # an output layer run only at predicted positions
    per_sequence: float = 0.0    # a head run once per sequence, on a pooled vector
    attention: float = 0.0       # attention-score FLOPs per token per position of context
    predictions: Callable = labelled  # how many positions of a batch are predicted (for per_prediction)

    def batch(self, n_tokens: int, seq_len: int, n_predicted: int | None = None,
              n_sequences: int | None = None) -> float:
        """Training FLOPs of ``n_tokens`` tokens in ``n_sequences`` sequences of ``seq_len``, ``n_predicted`` predicted."""
        for needed, count, name in ((self.per_prediction, n_predicted, "n_predicted"),
                                    (self.per_sequence, n_sequences, "n_sequences")):
            if needed and count is None:
                raise ValueError(f"this model's FLOPs depend on {name}: pass it")
        return (n_tokens * (self.per_token + self.attention * seq_len) + (n_predicted or 0) * self.per_prediction
                + (n_sequences or 0) * self.per_sequence)

    def of(self, batch: dict) -> float:
        """Training FLOPs of one collated batch (real tokens only: padding is no model work)."""
        ids = batch.get("input_ids")
        return self.batch(real_tokens(batch), ids.shape[1] if ids is not None else 1,
                          self.predictions(batch) if self.per_prediction else None, real_rows(batch))

    def __add__(self, other: "FlopsProfile") -> "FlopsProfile":
        """Two networks trained side by side on the same batches (ELECTRA's generator and discriminator)."""
        if self.predictions is not other.predictions and self.per_prediction and other.per_prediction:
            raise ValueError("the two profiles count their predicted positions differently")
        predictions = self.predictions if self.per_prediction else other.predictions
        return FlopsProfile(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)[:4]),
                            predictions=predictions)


# Classifier heads that read one pooled vector per sequence, by class and module-name prefix.
SEQUENCE_HEADS = {"ModernBertForSequenceClassification": ("head.", "classifier."),
                  "BertForSequenceClassification": ("bert.pooler.", "classifier.")}


def matmul_cost(trainable: bool, input_gradient: bool) -> int:
    """FLOPs per weight and use: 2 forward, 2 for the weight's own gradient, 2 for the gradient of its input."""
    return 2 + 2 * trainable + 2 * input_gradient


def flops_profile(model) -> FlopsProfile:
    """The ``FlopsProfile`` of ``model`` as it trains now (call again after freezing or unfreezing).

    A model that prices itself (``model.flops_profile()``: ELECTRA's two networks, GPT-1's classifier
    with its language-model loss) does so; any other goes through ``transformer_profile``.
    """
    return model.flops_profile() if hasattr(model, "flops_profile") else transformer_profile(model)


def transformer_profile(model, sequence_modules: tuple | None = None, output_weights: tuple = ()) -> FlopsProfile:
    """Price ``model``'s weights by where they run and what trains, from its layer groups (``optim``).

    Input embeddings are lookups, not matmuls, and cost nothing — unless tied to the output layer,
    which multiplies hidden states by the whole vocabulary. ``sequence_modules`` (name prefixes,
    default ``SEQUENCE_HEADS``) run once per sequence; ``output_weights`` are more weights applied at
    the top at predicted positions (GPT-1's tied language-model head). An encoder-decoder's decoder
    runs on its targets, the labelled positions (its own attention is not counted: targets are short).
    Models without a transformer config (any ``nn.Module``) count their weights alone.
    """
    n_layers = optim.num_layers(model)
    top = n_layers + 1
    sequence_modules = SEQUENCE_HEADS.get(type(model).__name__, ()) if sequence_modules is None else sequence_modules
    config = getattr(model, "config", None)
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    outputs = {id(output.weight)} if output is not None else set()
    extra = {id(w) for w in output_weights}
    tops = outputs | extra
    per_prediction = extra | (sparse_output_weights(model) if getattr(model, "sparse_prediction", False) else set())
    if getattr(config, "is_encoder_decoder", False):
        per_prediction |= outputs | {id(p) for name, p in model.named_parameters() if name.startswith("decoder.")}

    named = dict(model.named_parameters(remove_duplicate=False))
    groups = {id(p): top if id(p) in tops else optim.layer_group(name, n_layers) for name, p in named.items()}
    trained = [groups[id(p)] for p in named.values() if p.requires_grad]
    lowest = min(trained, default=None)

    def backward_reaches(group: int) -> bool:
        """Whether gradients flow through this group: something at or below it trains."""
        return lowest is not None and lowest <= group

    cost = {"per_token": 0.0, "per_prediction": 0.0, "per_sequence": 0.0}
    seen = set()
    for name, p in named.items():
        if id(p) in seen or (id(p) in embeddings and id(p) not in tops):
            continue
        seen.add(id(p))
        where = ("per_prediction" if id(p) in per_prediction else
                 "per_sequence" if name.startswith(sequence_modules) else "per_token")
        cost[where] += p.numel() * matmul_cost(p.requires_grad, backward_reaches(groups[id(p)]))
    hidden = getattr(config, "hidden_size", 0)
    attention = sum(4 * hidden * (3 if backward_reaches(layer) else 1) for layer in range(1, n_layers + 1))
    return FlopsProfile(**cost, attention=attention)


def sparse_output_weights(model) -> set:
    """ids of the weights a sparse-prediction masked LM runs only at labelled positions.

    ModernBERT's masked LM with ``sparse_prediction`` drops unlabelled positions before its
    prediction head (``model.head``: dense + norm) and its decoder (tied to the vocabulary
    embeddings). The flag is read from the model, not its config: a classifier fine-tuned from
    that config inherits the setting but has no such layer.
    """
    return {id(p) for m in (model.head, model.get_output_embeddings()) for p in m.parameters()}


# --- energy -------------------------------------------------------------------------------------

def power_estimate(device: torch.device) -> tuple:
    """(watts, how the figure was obtained) for the device a run uses, when nothing measures it."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        watts, source = hardware.gpu_spec_sources(name)["watts"]
        if watts is not None:
            return watts, f"estimated: board power {watts:.0f} W of {name} ({source}) x time"
        return UNLISTED_GPU_WATTS, f"estimated: assumed {UNLISTED_GPU_WATTS:.0f} W for the unlisted {name} x time"
    threads = torch.get_num_threads()
    plural = "s" if threads != 1 else ""
    return (threads * CPU_WATTS_PER_THREAD,
            f"estimated: assumed {CPU_WATTS_PER_THREAD:.0f} W x {threads} CPU thread{plural}")


def _import_nvml():
    """The ``pynvml`` module (package ``nvidia-ml-py``) where installed; the course runs without it."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def nvml_energy_counter(device: torch.device) -> Callable[[], float] | None:
    """A function reading the joules ``device`` used since its driver loaded, or None without a counter.

    NVML counts the whole board (Volta and newer; not under MIG or some virtual GPUs). The GPU is
    found by UUID, so ``CUDA_VISIBLE_DEVICES`` renumbering does not matter.
    """
    nvml = _import_nvml()
    if device.type != "cuda" or nvml is None:
        return None
    try:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByUUID(f"GPU-{torch.cuda.get_device_properties(device).uuid}")
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except nvml.NVMLError:
        return None
    return lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0  # millijoules


class EnergyMeter:
    """Energy a device uses, from its own counter where it has one, else estimated.

    ``joules(seconds)`` is the energy since the previous call (or since the meter was made).
    Measured, it is the counter's difference: everything the GPU did in between, evaluation and
    checkpoint saves included, and any other process on the same GPU too — a measurement of the
    board, not of one step. Estimated, it is power × ``seconds``. ``method`` says which.
    Board power only: the host's CPU, memory and cooling are not included either way.
    """

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self._counter = nvml_energy_counter(self.device)
        if self._counter is None:
            self._watts, self.method = power_estimate(self.device)
        else:
            self.method = f"measured: NVML energy counter of {torch.cuda.get_device_name(self.device)}"
            self._last = self._counter()

    def joules(self, seconds: float) -> float:
        if self._counter is None:
            return self._watts * seconds
        now = self._counter()
        spent, self._last = now - self._last, now
        return spent


# --- one run's totals ---------------------------------------------------------------------------

@dataclass
class RunCost:
    """Totals of one training run, over every process that trained it.

    MFU is the model FLOPs done over what the hardware could have done in the same wall time:
    ``capacity`` sums seconds x peak FLOP/s x processes of every stretch with a known peak, and
    ``capacity_flops`` the FLOPs done in those stretches, so a run resumed on other hardware (or
    with another number of processes) still gets one honest figure.
    """
    tokens: int = 0
    flops: float = 0.0
    seconds: float = 0.0
    kwh: float = 0.0
    co2_kg: float = 0.0
    energy_method: str = ""
    processes: int = 1
    capacity: float = 0.0
    capacity_flops: float = 0.0

    def add(self, tokens: int, flops: float, seconds: float, device: torch.device,
            energy_joules: float | None = None, energy_method: str | None = None,
            peak_flops: float | None = None, processes: int = 1) -> None:
        """A stretch of a run: ``tokens`` and ``flops`` summed over ``processes``, in ``seconds`` of wall time.

        Its energy: ``energy_joules`` with the ``energy_method`` that obtained it (e.g. an
        ``EnergyMeter``'s), else estimated from ``power_estimate``. ``peak_flops`` is one device's
        ceiling (``hardware.peak_flops``); without it the stretch counts for no MFU.
        """
        if energy_joules is None:
            watts, method = power_estimate(device)
            energy_joules, energy_method = processes * watts * seconds, method
        elif not energy_method:
            raise ValueError("energy_joules needs its energy_method: say how the figure was obtained")
        self._record_method(energy_method)
        self.tokens += tokens
        self.flops += flops
        self.seconds += seconds
        self.processes = max(self.processes, processes)
        self.kwh += energy_joules / 3.6e6
        self.co2_kg = self.kwh * carbon_intensity()
        if peak_flops:
            self.capacity += seconds * peak_flops * processes
            self.capacity_flops += flops

    @property
    def mfu(self) -> float | None:
        """Model FLOPs utilisation, 0-1; None when no stretch of the run had a known peak."""
        return self.capacity_flops / self.capacity if self.capacity else None

    def _record_method(self, method: str) -> None:
        """Keep every method a run's energy came from, e.g. after a resume on another machine."""
        if not self.energy_method:
            self.energy_method = method
        elif not self.energy_method.endswith(method):
            self.energy_method += f"; then {method}"

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "tokens_per_second": self.tokens_per_second, "mfu": self.mfu}

    @classmethod
    def from_dict(cls, saved: dict) -> "RunCost":
        """Inverse of ``as_dict`` (as stored in a checkpoint's trainer state).

        Checkpoints from before energy could be measured say ``power_method``: always an estimate.
        Those from before MFU was split into its parts kept only the ratio: it is not carried over.
        """
        saved = {k: v for k, v in saved.items() if k not in ("tokens_per_second", "mfu")}
        if "power_method" in saved:
            old = saved.pop("power_method")
            saved.setdefault("energy_method", f"estimated: {old}" if old else "")
        return cls(**saved)

    def summary(self) -> str:
        mfu = f", MFU {100 * self.mfu:.1f}%" if self.mfu is not None else ""
        return (f"{self.tokens:,} tokens, {self.flops:.2e} FLOPs, {self.kwh * 1000:.3f} Wh, "
                f"{self.co2_kg * 1000:.3f} g CO2e{mfu} (energy {self.energy_method})")
