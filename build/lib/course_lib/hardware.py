"""The machine a run trains on: which device, which number format, and the fastest it could go.

- ``pick_device`` / ``pick_precision`` / ``autocast``: where a run trains and in which number format.
  The size profile decides the default: the ``cpu`` profile (the default) trains on the CPU in fp32,
  so a GPU in the machine does not change the committed notebook outputs; the ``gpu`` profile picks
  CUDA (or Apple's MPS) and bf16 where the GPU has it.
- ``peak_flops``: the ceiling model FLOPs utilisation (MFU) is measured against. A GPU's is its
  datasheet's dense tensor-core peak for the run's number format (``GPU_SPECS``); a CPU's is
  measured: the fp32 matrix-multiply rate of this machine on the run's threads (``cpu_peak_flops``),
  timed once and cached, because no datasheet says what a laptop core sustains.
"""
import json
import os
import platform
import time
from contextlib import nullcontext
from typing import NamedTuple

import torch

from . import runtime
from .errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
PEAK_ENV, WATTS_ENV, CPU_PEAK_ENV = "COURSE_GPU_PEAK_TFLOPS", "COURSE_GPU_WATTS", "COURSE_CPU_PEAK_GFLOPS"


class GpuSpec(NamedTuple):
    """A GPU's dense peaks in FLOP/s (no 2:4 sparsity) and its board power in W; None: no figure to trust.

    ``half``: bf16 tensor cores with FP32 accumulate (fp16 where the chip has no bf16), what autocast runs.
    ``fp32``: an fp32 matmul as the trainer runs it: TF32 tensor cores where the chip has them (the
    trainer turns TF32 on), FP32 CUDA cores where it has none (Volta, Turing).
    """
    half: float | None
    fp32: float | None
    watts: float | None


# Keyed by the exact name torch.cuda.get_device_name() returns. Datasheets often print the sparse figure,
# twice the dense one; GeForce cards run FP32-accumulate tensor math at half their FP16-accumulate rate.
GPU_SPECS = {
    # Blackwell: HGX B200 specifications, per GPU at its 1,000 W configuration
    "NVIDIA B200": GpuSpec(2250e12, 1125e12, 1000),
    # Hopper: H100 datasheet (SXM5 700 W; PCIe 350 W; NVL per GPU, 350-400 W configurable), H200 datasheet (SXM)
    "NVIDIA H100 80GB HBM3": GpuSpec(989e12, 494.5e12, 700),
    "NVIDIA H100 PCIe": GpuSpec(756e12, 378e12, 350),
    "NVIDIA H100 NVL": GpuSpec(835e12, 417.5e12, 400),
    "NVIDIA H200": GpuSpec(989e12, 494.5e12, 700),
    # Ampere data centre: A100 datasheet (SXM4 400 W; PCIe 40GB 250 W, 80GB 300 W), A10 datasheet
    "NVIDIA A100-SXM4-80GB": GpuSpec(312e12, 156e12, 400),
    "NVIDIA A100-SXM4-40GB": GpuSpec(312e12, 156e12, 400),
    "NVIDIA A100-PCIE-40GB": GpuSpec(312e12, 156e12, 250),
    "NVIDIA A100 80GB PCIe": GpuSpec(312e12, 156e12, 300),
    "NVIDIA A10": GpuSpec(125e12, 62.5e12, 150),
    # Ada: L4, L40 and L40S datasheets. The RTX 6000 Ada datasheet gives only a sparse FP8 figure.
    "NVIDIA L4": GpuSpec(121e12, 60e12, 72),
    "NVIDIA L40": GpuSpec(181e12, 90.5e12, 300),
    "NVIDIA L40S": GpuSpec(362e12, 183e12, 350),
    "NVIDIA RTX 6000 Ada Generation": GpuSpec(None, None, 300),
    # GeForce: NVIDIA's GA102, Ada and Blackwell architecture whitepapers, FP32-accumulate and TF32 columns;
    # total board power
    "NVIDIA GeForce RTX 3090": GpuSpec(71e12, 35.6e12, 350),
    "NVIDIA GeForce RTX 4090": GpuSpec(165e12, 82.6e12, 450),
    "NVIDIA GeForce RTX 5090": GpuSpec(209e12, 104.8e12, 575),
    # Turing and Volta, no bf16 and no TF32 (fp16 tensor-core peak; fp32 CUDA cores): T4 datasheet; V100
    # datasheet (SXM2 300 W, PCIe 250 W)
    "Tesla T4": GpuSpec(65e12, 8.1e12, 70),
    "Tesla V100-SXM2-16GB": GpuSpec(125e12, 15.7e12, 300),
    "Tesla V100-SXM2-32GB": GpuSpec(125e12, 15.7e12, 300),
    "Tesla V100-PCIE-16GB": GpuSpec(112e12, 14e12, 250),
    "Tesla V100-PCIE-32GB": GpuSpec(112e12, 14e12, 250),
}
UNKNOWN_GPU = GpuSpec(None, None, None)


# --- device and number format -------------------------------------------------------------------

def default_device() -> str:
    """The device name a run uses when none is asked for: the size profile's choice (see the module doc)."""
    return "cpu" if runtime.profile() == "cpu" else "auto"


def pick_device(name: str | None = None) -> torch.device:
    """``None``: the profile's default; ``"auto"``: CUDA if present, else MPS, else the CPU; else exactly ``name``."""
    name = default_device() if name is None else name
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
    return "bf16" if native_bf16(device) else "fp16"


def autocast(device: torch.device, precision: str):
    """The context that runs a forward pass in ``precision`` (bf16/fp16) on ``device``; fp32 runs as is."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 matmuls in hardware: CUDA compute capability 8.0 (Ampere) or newer.

    Not ``torch.cuda.is_bf16_supported()``, which also says yes where bf16 is only emulated and
    slower than fp16 (e.g. a T4).
    """
    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


# --- a GPU's figures: the datasheet table, or the user's own ---------------------------------------

def env_float(name: str) -> float | None:
    """A number from the environment variable ``name`` (None if unset); anything else is a ConfigError."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise ConfigError(f"{name}={value!r} is not a positive number; set it to one, or unset it")
    return number


def gpu_spec_sources(name: str) -> dict:
    """{"half" | "fp32" | "watts": (figure, where it comes from)} for the GPU called ``name``.

    An environment override wins when set, for chips the table lacks or a run that knows better:
    ``COURSE_GPU_PEAK_TFLOPS`` (the peak of the number format the run trains in) and
    ``COURSE_GPU_WATTS``. Otherwise the table's entry for the exact name, whitespace normalised.
    """
    listed = GPU_SPECS.get(" ".join(name.split()), UNKNOWN_GPU)
    peak_tflops, watts = env_float(PEAK_ENV), env_float(WATTS_ENV)
    overrides = {"half": peak_tflops and peak_tflops * 1e12, "fp32": peak_tflops and peak_tflops * 1e12,
                 "watts": watts}
    envs = {"half": PEAK_ENV, "fp32": PEAK_ENV, "watts": WATTS_ENV}
    return {field: (overrides[field], envs[field]) if overrides[field] is not None
            else (getattr(listed, field), "datasheet table" if getattr(listed, field) is not None else "unknown")
            for field in GpuSpec._fields}


def gpu_spec_for(name: str) -> GpuSpec:
    """The ``GpuSpec`` of the GPU called ``name`` (overrides applied); None for each figure not known."""
    sources = gpu_spec_sources(name)
    return GpuSpec(*(sources[field][0] for field in GpuSpec._fields))


def gpu_spec(device: torch.device) -> GpuSpec:
    """``gpu_spec_for`` the GPU behind ``device``; all None for anything but CUDA."""
    device = torch.device(device)
    return gpu_spec_for(torch.cuda.get_device_name(device)) if device.type == "cuda" else UNKNOWN_GPU


# --- the ceiling of MFU -----------------------------------------------------------------------------

def peak_flops(device: torch.device, precision: str) -> float | None:
    """FLOP/s one ``device`` could do at best in ``precision``; None where nothing says (MPS, an unlisted GPU).

    The peak follows the number format: an fp32 run on an H100 is judged against TF32's 495 TFLOP/s,
    not bf16's 989 (``GPU_SPECS``). A CPU's is this machine's measured fp32 matmul rate on the threads
    the run uses (``cpu_peak_flops``): autocast on a CPU is rarely faster, so fp32 is its ceiling.
    """
    device = torch.device(device)
    if device.type == "cuda":
        spec = gpu_spec(device)
        return spec.fp32 if precision == "fp32" else spec.half
    if device.type == "cpu":
        return cpu_peak_flops(torch.get_num_threads())
    return None


CPU_PEAK_SIZE, CPU_PEAK_REPEATS = 2048, 5


def cpu_peak_flops(threads: int) -> float:
    """This CPU's fp32 matrix-multiply rate on ``threads`` threads, in FLOP/s: the best of a few large ``torch.mm``.

    Measured once per (processor, thread count, torch version) and cached in the course cache, so a run
    pays for it once; ``COURSE_CPU_PEAK_GFLOPS`` overrides it. Measured while other work shares the
    cores, it comes out low and every MFU against it high: ``python -m course_lib doctor`` shows the
    figure, and deleting the cache file (or setting the variable) replaces it.
    """
    override = env_float(CPU_PEAK_ENV)
    if override is not None:
        return override * 1e9
    path = runtime.cache_dir() / "cpu_peak.json"
    key = f"{platform.processor() or platform.machine()}|{cpu_model()}|{threads} threads|torch {torch.__version__}"
    known = json.loads(path.read_text()) if path.is_file() else {}
    if key not in known:
        known[key] = measure_matmul_flops(threads)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, path)
    return known[key]


def cpu_model() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), so a cache copied to another machine is not trusted."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        return ""


def measure_matmul_flops(threads: int, size: int = CPU_PEAK_SIZE, repeats: int = CPU_PEAK_REPEATS) -> float:
    """FLOP/s of the fastest of ``repeats`` fp32 ``size`` x ``size`` matmuls on ``threads`` threads (after a warm-up)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)  # not the global one: a run's random draws stay as they were
        a, b = (torch.randn(size, size, generator=generator) for _ in range(2))
        torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return 2 * size ** 3 / best
