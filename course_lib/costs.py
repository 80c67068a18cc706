"""What training costs: FLOPs, hardware utilisation, energy and CO2 — and the published figures.

FLOPs follow the standard accounting (Kaplan et al. 2020; Chowdhery et al. 2022, app. B):
a training step costs 6 FLOPs per matmul weight per token (2 forward, 4 backward) plus
12·layers·hidden·seq_len per token for the attention scores. A masked LM that runs its output
layer only where there is a label (ModernBERT's ``sparse_prediction``) pays for that layer per
predicted position, not per token.

Energy is measured where the GPU counts it (NVML's energy counter, read through the optional
``nvidia-ml-py`` package) and estimated otherwise: board power × time on a GPU,
``CPU_WATTS_PER_THREAD`` per busy thread on a CPU. Every figure carries the method that produced
it, so nobody mistakes an estimate for a measurement.
"""
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

CARBON_ENV = "COURSE_CARBON_INTENSITY"
WORLD_CARBON_INTENSITY = 0.475  # kg CO2e per kWh, world average electricity (IEA, 2019)
CPU_WATTS_PER_THREAD = 10.0     # a busy server core; laptop cores draw less, desktop more
UNLISTED_GPU_WATTS = 300.0      # a mid-range data-centre board, for GPUs missing from GPU_SPECS
PEAK_ENV, WATTS_ENV = "COURSE_GPU_PEAK_TFLOPS", "COURSE_GPU_WATTS"

# Dense (no 2:4 sparsity) bf16 tensor-core peak FLOP/s with FP32 accumulate (fp16 where the chip has
# no bf16) and board power in W, keyed by the exact name torch.cuda.get_device_name() returns.
# Datasheets often print the sparse figure, twice the dense one; GeForce cards run FP32-accumulate
# tensor math at half their FP16-accumulate rate. None: no vendor figure to trust.
GPU_SPECS = {
    # Blackwell: HGX B200 specifications, per GPU at its 1,000 W configuration
    "NVIDIA B200": (2250e12, 1000),
    # Hopper: H100 datasheet (SXM5 700 W; PCIe 350 W; NVL per GPU, 350-400 W configurable), H200 datasheet (SXM)
    "NVIDIA H100 80GB HBM3": (989e12, 700),
    "NVIDIA H100 PCIe": (756e12, 350),
    "NVIDIA H100 NVL": (835e12, 400),
    "NVIDIA H200": (989e12, 700),
    # Ampere data centre: A100 datasheet (SXM4 400 W; PCIe 40GB 250 W, 80GB 300 W), A10 datasheet
    "NVIDIA A100-SXM4-80GB": (312e12, 400),
    "NVIDIA A100-SXM4-40GB": (312e12, 400),
    "NVIDIA A100-PCIE-40GB": (312e12, 250),
    "NVIDIA A100 80GB PCIe": (312e12, 300),
    "NVIDIA A10": (125e12, 150),
    # Ada: L4, L40 and L40S datasheets. The RTX 6000 Ada datasheet gives only a sparse FP8 figure.
    "NVIDIA L4": (121e12, 72),
    "NVIDIA L40": (181e12, 300),
    "NVIDIA L40S": (362e12, 350),
    "NVIDIA RTX 6000 Ada Generation": (None, 300),
    # GeForce: NVIDIA's GA102, Ada and Blackwell architecture whitepapers, FP32-accumulate column;
    # total board power
    "NVIDIA GeForce RTX 3090": (71e12, 350),
    "NVIDIA GeForce RTX 4090": (165e12, 450),
    "NVIDIA GeForce RTX 5090": (209e12, 575),
    # Turing and Volta, no bf16 (fp16 peak): T4 datasheet; V100 datasheet (SXM2 300 W, PCIe 250 W)
    "Tesla T4": (65e12, 70),
    "Tesla V100-SXM2-16GB": (125e12, 300),
    "Tesla V100-SXM2-32GB": (125e12, 300),
    "Tesla V100-PCIE-16GB": (112e12, 250),
    "Tesla V100-PCIE-32GB": (112e12, 250),
}


def carbon_intensity() -> float:
    """kg CO2e per kWh of the local grid (``COURSE_CARBON_INTENSITY``; default: world average)."""
    return float(os.environ.get(CARBON_ENV, WORLD_CARBON_INTENSITY))


# --- FLOPs ----------------------------------------------------------------------------------

def matmul_weights(model) -> list:
    """Parameters that take part in a matrix multiply for every token they are used for.

    Input embeddings are lookups, not matmuls, so they are excluded — unless they are
    tied to the output layer, which multiplies hidden states by the whole vocabulary.
    """
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied_output = id(output.weight) if output is not None else None
    return [p for p in model.parameters() if id(p) not in embeddings or id(p) == tied_output]


def sparse_output_weights(model) -> set:
    """ids of the weights a sparse-prediction masked LM runs only at labelled positions.

    ModernBERT's masked LM with ``sparse_prediction`` drops unlabelled positions before its
    prediction head (``model.head``: dense + norm) and its decoder (tied to the vocabulary
    embeddings). The flag is read from the model, not its config: a classifier fine-tuned from
    that config inherits the setting but has no such layer. Any other model: the empty set.
    """
    if not getattr(model, "sparse_prediction", False):
        return set()
    return {id(p) for m in (model.head, model.get_output_embeddings()) for p in m.parameters()}


@dataclass(frozen=True)
class FlopsProfile:
    """A model's training FLOPs by unit of work, so a batch is priced by arithmetic alone.

    ``flops_profile`` walks the modules once; a trainer keeps the result for the whole run.
    """
    per_token: float       # 6 x the weights every token goes through
    per_prediction: float  # 6 x the output-layer weights run only at predicted positions (0 if none)
    attention: float       # 12 x layers x hidden: attention-score FLOPs per token per position of context

    def batch(self, n_tokens: int, seq_len: int, n_predicted: int | None = None) -> float:
        """Training FLOPs of ``n_tokens`` tokens in sequences of ``seq_len``, ``n_predicted`` of them labelled."""
        if n_predicted is None:
            if self.per_prediction:
                raise ValueError("this model runs its output layer only at labelled positions: pass n_predicted")
            n_predicted = 0
        return n_tokens * (self.per_token + self.attention * seq_len) + n_predicted * self.per_prediction


def flops_profile(model) -> FlopsProfile:
    """The ``FlopsProfile`` of ``model`` (walks its modules: compute once per run, not per step).

    A model made of several networks (ELECTRA's generator and discriminator) prices itself.
    """
    if hasattr(model, "flops_profile"):
        return model.flops_profile()
    output = sparse_output_weights(model)
    weights = matmul_weights(model)
    cfg = model.config
    return FlopsProfile(per_token=6 * sum(p.numel() for p in weights if id(p) not in output),
                        per_prediction=6 * sum(p.numel() for p in weights if id(p) in output),
                        attention=12 * cfg.num_hidden_layers * cfg.hidden_size)


# --- the hardware: peak, power, bf16 ----------------------------------------------------------

def _env_float(name: str) -> float | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def gpu_spec_sources(name: str) -> tuple:
    """((peak FLOP/s, where from), (watts, where from)) for the GPU called ``name``.

    An environment override (``COURSE_GPU_PEAK_TFLOPS``, ``COURSE_GPU_WATTS``) wins when set, for
    chips the table lacks; otherwise the table's entry for the exact name, whitespace normalised.
    """
    peak, watts = GPU_SPECS.get(" ".join(name.split()), (None, None))
    peak_tflops = _env_float(PEAK_ENV)
    return (_overridden(peak, None if peak_tflops is None else peak_tflops * 1e12, PEAK_ENV),
            _overridden(watts, _env_float(WATTS_ENV), WATTS_ENV))


def _overridden(listed, override, env: str) -> tuple:
    if override is not None:
        return override, env
    return listed, "datasheet table" if listed is not None else "unknown"


def gpu_spec_for(name: str) -> tuple:
    """(dense bf16 peak FLOP/s, board watts) of the GPU called ``name``; None for what is unknown."""
    (peak, _), (watts, _) = gpu_spec_sources(name)
    return peak, watts


def gpu_spec(device: torch.device) -> tuple:
    """``gpu_spec_for`` the GPU behind ``device``; (None, None) for anything but CUDA."""
    device = torch.device(device)
    if device.type != "cuda":
        return None, None
    return gpu_spec_for(torch.cuda.get_device_name(device))


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 matmuls in hardware: CUDA compute capability 8.0 (Ampere) or newer.

    Not ``torch.cuda.is_bf16_supported()``, which also says yes where bf16 is only emulated and
    slower than fp16 (e.g. a T4).
    """
    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


# --- energy -------------------------------------------------------------------------------------

def power_estimate(device: torch.device) -> tuple:
    """(watts, how the figure was obtained) for the device a run uses, when nothing measures it."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        _, (watts, source) = gpu_spec_sources(name)
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
    """Totals of one training run."""
    tokens: int = 0
    flops: float = 0.0
    seconds: float = 0.0
    kwh: float = 0.0
    co2_kg: float = 0.0
    mfu: float | None = None
    energy_method: str = ""

    def add(self, tokens: int, flops: float, seconds: float, device: torch.device,
            energy_joules: float | None = None, energy_method: str = "measured by the caller") -> None:
        """One step's work. Its energy: ``energy_joules`` when given (e.g. from an ``EnergyMeter``,
        with its ``method``), else estimated from ``power_estimate``. MFU needs a listed GPU peak."""
        if energy_joules is None:
            watts, energy_method = power_estimate(device)
            energy_joules = watts * seconds
        self._record_method(energy_method)
        self.tokens += tokens
        self.flops += flops
        self.seconds += seconds
        self.kwh += energy_joules / 3.6e6
        self.co2_kg = self.kwh * carbon_intensity()
        peak, _ = gpu_spec(device)
        self.mfu = self.flops / self.seconds / peak if peak and self.seconds else None

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
        return {**asdict(self), "tokens_per_second": self.tokens_per_second}

    @classmethod
    def from_dict(cls, saved: dict) -> "RunCost":
        """Inverse of ``as_dict`` (as stored in a checkpoint's trainer state).

        Checkpoints from before energy could be measured say ``power_method``: always an estimate.
        """
        saved = {k: v for k, v in saved.items() if k != "tokens_per_second"}
        if "power_method" in saved:
            old = saved.pop("power_method")
            saved.setdefault("energy_method", f"estimated: {old}" if old else "")
        return cls(**saved)

    def summary(self) -> str:
        mfu = f", MFU {100 * self.mfu:.1f}%" if self.mfu is not None else ""
        return (f"{self.tokens:,} tokens, {self.flops:.2e} FLOPs, {self.kwh * 1000:.3f} Wh, "
                f"{self.co2_kg * 1000:.3f} g CO2e{mfu} (energy {self.energy_method})")


# --- published figures: the scale-up race in numbers --------------------------------------------

@dataclass(frozen=True)
class PublishedModel:
    name: str
    year: float          # publication date as a decimal year
    params: float
    tokens: float | None  # pretraining tokens, where the paper states them
    mwh: float | None     # training energy, where measured/estimated by the cited work
    tco2e: float | None
    source: str

    @property
    def flops(self) -> float | None:
        return 6 * self.params * self.tokens if self.tokens else None


PUBLISHED = [
    # GPT-1's paper gives no parameter count; 117M is the size of the model OpenAI released, the smallest in
    # the GPT-2 paper's table of sizes (Radford et al. 2019).
    PublishedModel("GPT-1", 2018.44, 117e6, None, None, None,
                   "Radford et al. 2018; parameters not in the paper: 117M from Radford et al. 2019 (GPT-2, Table 2)"),
    # BERT: 1M steps of 256 sequences, 90% of the steps at length 128 and 10% at 512 (Devlin et al. 2018,
    # appendix A.2), so about 4.26e10 tokens: the nominal 256 x 512 x 1M = 1.31e11 counts every step at 512.
    PublishedModel("BERT-base", 2018.78, 110e6, 256 * (0.9 * 128 + 0.1 * 512) * 1e6, 1.507, 0.652,
                   "Devlin et al. 2018 (1M steps x 256 sequences, 90% of them 128 tokens long, 10% 512; "
                   "appendix A.2); energy: Strubell et al. 2019"),
    PublishedModel("BERT-large", 2018.78, 340e6, 256 * (0.9 * 128 + 0.1 * 512) * 1e6, None, None,
                   "Devlin et al. 2018 (same schedule as BERT-base, appendix A.2)"),
    PublishedModel("GPT-2", 2019.12, 1.5e9, None, None, None, "Radford et al. 2019"),
    PublishedModel("RoBERTa-large", 2019.57, 355e6, 2.1e12, None, None, "Liu et al. 2019 (500k steps x 8k x 512 tokens)"),
    PublishedModel("BART-large", 2019.83, 406e6, None, None, None, "Lewis et al. 2019"),
    PublishedModel("T5-11B", 2019.81, 11e9, 1e12, 85.7, 46.7,
                   "Raffel et al. 2019 (1M steps x 2^11 x 512 tokens); energy: Patterson et al. 2021"),
    PublishedModel("GPT-3", 2020.41, 175e9, 300e9, 1287.0, 552.0, "Brown et al. 2020; energy: Patterson et al. 2021"),
]


# --- who can afford it: GPU-hours, the race's pace, amortisation --------------------------------

def gpu_hours(flops: float, peak_flops: float, mfu: float) -> float:
    """GPU-hours to do ``flops`` of training on GPUs of ``peak_flops`` FLOP/s kept ``mfu`` busy (0-1)."""
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu is a fraction of the peak, in (0, 1], not {mfu}")
    return flops / (peak_flops * mfu) / 3600


def doubling_time_months(published: list) -> float:
    """Months for the largest models to double in size: a straight line through log2(parameters) by year.

    Fitted to every model given (not only the record holders), so it measures the field's pace.
    """
    years = [m.year for m in published]
    slope = np.polyfit(years, np.log2([m.params for m in published]), 1)[0]
    return 12 / slope


def break_even_tasks(pretrain_flops: float, finetune_flops: float, scratch_flops: float) -> float | None:
    """Tasks that must share one pretraining before it has paid for itself in compute.

    Each task costs ``finetune_flops`` on top of the pretraining, or ``scratch_flops`` to reach the
    same accuracy from random weights (more labels, so more steps). Pretraining pays off after
    pretrain / (scratch - finetune) tasks; None when fine-tuning saves no compute per task (then
    pretraining pays only in labels and accuracy, never in FLOPs).
    """
    saved = scratch_flops - finetune_flops
    return pretrain_flops / saved if saved > 0 else None
