"""What training costs: FLOPs, hardware utilisation, energy and CO2 — and the published figures.

FLOPs follow the standard accounting (Kaplan et al. 2020; Chowdhery et al. 2022, app. B):
a training step costs 6 FLOPs per matmul weight per token (2 forward, 4 backward) plus
12·layers·hidden·seq_len per token for the attention scores.

Energy is *estimated*: machine power × time. On a CPU without a power meter the course assumes
``CPU_WATTS_PER_THREAD`` per busy thread; on a GPU it uses the board power of known chips. The
method is reported with every figure, so nobody mistakes an estimate for a measurement.
"""
import os
from dataclasses import asdict, dataclass

import torch

CARBON_ENV = "COURSE_CARBON_INTENSITY"
WORLD_CARBON_INTENSITY = 0.475  # kg CO2e per kWh, world average electricity (IEA, 2019)
CPU_WATTS_PER_THREAD = 10.0     # a busy server core; laptop cores draw less, desktop more

# Dense bf16 tensor-core peak (FLOP/s) and board power (W) by GPU name fragment.
GPU_SPECS = {
    "H200": (989e12, 700), "H100": (989e12, 700), "A100": (312e12, 400), "A10": (125e12, 150),
    "L4": (121e12, 72), "4090": (165e12, 450), "3090": (71e12, 350), "V100": (125e12, 300),
    "T4": (65e12, 70),
}


def carbon_intensity() -> float:
    """kg CO2e per kWh of the local grid (``COURSE_CARBON_INTENSITY``; default: world average)."""
    return float(os.environ.get(CARBON_ENV, WORLD_CARBON_INTENSITY))


def matmul_parameters(model) -> int:
    """Parameters that take part in a matrix multiply for every token.

    Input embeddings are lookups, not matmuls, so they are excluded — unless they are
    tied to the output layer, which multiplies every hidden state by the whole vocabulary.
    """
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied_output = id(output.weight) if output is not None else None
    return sum(p.numel() for p in model.parameters() if id(p) not in embeddings or id(p) == tied_output)


def training_flops_per_token(model, seq_len: int) -> float:
    cfg = model.config
    return 6 * matmul_parameters(model) + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq_len


def gpu_spec(device: torch.device):
    """(peak bf16 FLOP/s, board watts) of a known GPU, else (None, None)."""
    if device.type != "cuda":
        return None, None
    name = torch.cuda.get_device_name(device)
    for fragment, spec in GPU_SPECS.items():
        if fragment in name:
            return spec
    return None, None


def power_estimate(device: torch.device) -> tuple:
    """(watts, how the figure was obtained) for the device a run uses."""
    if device.type == "cuda":
        _, watts = gpu_spec(device)
        if watts is not None:
            return watts, f"board power of {torch.cuda.get_device_name(device)}"
        return 300.0, "assumed 300 W for an unlisted GPU"
    threads = torch.get_num_threads()
    return threads * CPU_WATTS_PER_THREAD, f"assumed {CPU_WATTS_PER_THREAD:.0f} W x {threads} CPU threads"


@dataclass
class RunCost:
    """Totals of one training run."""
    tokens: int = 0
    flops: float = 0.0
    seconds: float = 0.0
    kwh: float = 0.0
    co2_kg: float = 0.0
    mfu: float | None = None
    power_method: str = ""

    def add(self, tokens: int, flops: float, seconds: float, device: torch.device) -> None:
        watts, self.power_method = power_estimate(device)
        self.tokens += tokens
        self.flops += flops
        self.seconds += seconds
        self.kwh += watts * seconds / 3.6e6
        self.co2_kg = self.kwh * carbon_intensity()
        peak, _ = gpu_spec(device)
        self.mfu = self.flops / self.seconds / peak if peak and self.seconds else None

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "tokens_per_second": self.tokens_per_second}

    @classmethod
    def from_dict(cls, saved: dict) -> "RunCost":
        """Inverse of ``as_dict`` (as stored in a checkpoint's trainer state)."""
        return cls(**{k: v for k, v in saved.items() if k != "tokens_per_second"})

    def summary(self) -> str:
        mfu = f", MFU {100 * self.mfu:.1f}%" if self.mfu is not None else ""
        return (f"{self.tokens:,} tokens, {self.flops:.2e} FLOPs, {self.kwh * 1000:.3f} Wh, "
                f"{self.co2_kg * 1000:.3f} g CO2e{mfu} (power: {self.power_method})")


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
    PublishedModel("GPT-1", 2018.44, 117e6, None, None, None, "Radford et al. 2018"),
    PublishedModel("BERT-base", 2018.78, 110e6, 128e9, 1.507, 0.652,
                   "Devlin et al. 2018 (1M steps x 128k tokens); energy: Strubell et al. 2019"),
    PublishedModel("BERT-large", 2018.78, 340e6, 128e9, None, None, "Devlin et al. 2018"),
    PublishedModel("GPT-2", 2019.12, 1.5e9, None, None, None, "Radford et al. 2019"),
    PublishedModel("RoBERTa-large", 2019.57, 355e6, 2.1e12, None, None, "Liu et al. 2019 (500k steps x 8k x 512 tokens)"),
    PublishedModel("BART-large", 2019.83, 406e6, None, None, None, "Lewis et al. 2019"),
    PublishedModel("T5-11B", 2019.81, 11e9, 1e12, 85.7, 46.7,
                   "Raffel et al. 2019 (1M steps x 2^11 x 512 tokens); energy: Patterson et al. 2021"),
    PublishedModel("GPT-3", 2020.41, 175e9, 300e9, 1287.0, 552.0, "Brown et al. 2020; energy: Patterson et al. 2021"),
]
