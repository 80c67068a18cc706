"""``python -m course_lib doctor``: what a learner runs first when something is off.

It checks what the course depends on: the pinned library versions, the accelerator (and the peak,
power and bf16 support the cost accounting assumes for it), the data mirror's checksums, the cache
and the size profile. Each problem is printed with its fix and makes the exit code 1; notes explain
without failing (no data mirror, say: the course then downloads its data).
"""
import importlib.metadata
import platform
from pathlib import Path

import torch

from . import costs, data, hardware, runtime
from .errors import ConfigError

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"


def problem(what: str, fix: str) -> str:
    return f"problem: {what} fix: {fix}"


def installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def pinned_versions(path: Path = REQUIREMENTS) -> dict:
    """{package: version} of the exact pins (``name==version``) in a requirements file."""
    pins = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[name.strip()] = version.strip()
    return pins


def check_versions() -> list:
    """The committed notebook outputs were produced with the pinned versions; others may differ."""
    lines = [f"Python {platform.python_version()}, torch {torch.__version__}"]
    if not REQUIREMENTS.is_file():
        return lines + [f"note: no {REQUIREMENTS.name} beside the package, so versions were not checked"]
    pins = pinned_versions()
    problems = [problem(f"{package} {mismatch}, {REQUIREMENTS.name} pins {pinned}.", f"pip install -r {REQUIREMENTS}")
                for package, pinned in pins.items() if (mismatch := version_mismatch(package, pinned))]
    return lines + (problems or [f"libraries: all {len(pins)} pinned versions installed"])


def version_mismatch(package: str, pinned: str) -> str | None:
    """How the installed ``package`` differs from its pin, or None when it matches."""
    installed = installed_version(package)
    if installed is None:
        return "is not installed"
    if installed.split("+")[0] != pinned:  # a local label such as +cpu or +cu128 is the same release
        return f"{installed} is installed"
    return None


def check_accelerator() -> list:
    """The device the trainer will pick, and the figures its cost report will rest on."""
    try:
        device = hardware.pick_device()
        lines = [gpu_line()] if torch.cuda.is_available() else [
            f"CUDA: not available ({'MPS available' if torch.backends.mps.is_available() else 'no MPS'})"]
        lines.append(f"runs train on {device} unless told otherwise ({runtime.profile()} profile; --device, or "
                     f"{runtime.PROFILE_ENV}=gpu for a GPU)")
        if device.type == "cpu":
            threads = torch.get_num_threads()
            lines.append(f"CPU peak for MFU: {hardware.cpu_peak_flops(threads) / 1e9:.0f} GFLOP/s of fp32 matmul on "
                         f"{threads} threads ({cpu_peak_source()})")
        return lines + energy(device)
    except ConfigError as err:  # a malformed override, or an unknown profile (check_profile says how to fix it)
        return [problem(f"{err}.", "fix the variable it names, or unset it.")]


def gpu_line() -> str:
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    major, minor = torch.cuda.get_device_capability(device)
    figures = hardware.gpu_spec_sources(name)
    (half, half_from), (fp32, _), (watts, watts_from) = (figures[f] for f in hardware.GpuSpec._fields)
    peaks = (f"peak {half / 1e12:.0f} TFLOP/s bf16, {fp32 / 1e12:.0f} TFLOP/s fp32/TF32 ({half_from})" if half
             else f"peak unknown, so no MFU (set {hardware.PEAK_ENV})")
    power = f"board power {watts:.0f} W ({watts_from})" if watts else f"board power unknown (set {hardware.WATTS_ENV})"
    return (f"CUDA: {name} (compute capability {major}.{minor}), native bf16: "
            f"{'yes' if hardware.native_bf16(device) else 'no'}; {peaks}; {power}")


def cpu_peak_source() -> str:
    if hardware.env_float(hardware.CPU_PEAK_ENV) is not None:
        return f"from {hardware.CPU_PEAK_ENV}"
    return (f"measured once, cached in {runtime.cache_dir() / 'cpu_peak.json'}: measured while other work ran, it is "
            f"too low; delete the file to measure again, or set {hardware.CPU_PEAK_ENV}")


def energy(device: torch.device) -> list:
    method = costs.EnergyMeter(device).method
    lines = [f"energy: {method}"]
    if device.type == "cuda" and method.startswith("estimated"):
        lines.append("note: with `pip install nvidia-ml-py` the course reads the GPU's own energy counter "
                     "(Volta or newer, not under MIG) instead of estimating")
    return lines


def check_data_mirror() -> list:
    """Every mirror file present and matching its sha256: the data loader refuses anything else."""
    root = data.mirror_dir()
    if root is None:
        return [f"note: {data.MIRROR_ENV} is not set: the course downloads its datasets (needs internet)"]
    unset = f"or unset {data.MIRROR_ENV} to download the data instead"
    if not root.is_dir():
        return [problem(f"{data.MIRROR_ENV}={root} is not a directory.", f"point it at the course data, {unset}.")]
    lines = []
    for relpath, expected in data.MIRROR_SHA256.items():
        path = root / relpath
        if not path.is_file():
            lines.append(problem(f"{path} is missing.", f"copy {relpath} from the course data, {unset}."))
        elif data.sha256_of(path) != expected:
            lines.append(problem(f"{path} does not match its sha256 (corrupt, or another version).",
                                 f"replace it with the original {relpath} from the course data."))
    return lines or [f"data mirror {root}: {len(data.MIRROR_SHA256)} files, checksums OK"]


def check_cache() -> list:
    """Where derived data and the course's own checkpoints go, and which checkpoints exist."""
    try:
        root = runtime.cache_dir()
    except ConfigError as err:
        return [problem(f"{err}.", f"set {runtime.CACHE_ENV} to a writable directory.")]
    folder = root / "checkpoints"
    found = sorted(d.name for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []
    listed = ", ".join(found) if found else "none yet (`python -m course_lib checkpoints` trains them)"
    return [f"cache {root}; course checkpoints: {listed}"]


def check_profile() -> list:
    try:
        name = runtime.profile()
    except ConfigError as err:
        return [problem(str(err), f"set {runtime.PROFILE_ENV} to {' or '.join(runtime.PROFILES)}, or unset it.")]
    lines = [f"profile: {name}"]
    if name == "gpu" and not torch.cuda.is_available():
        lines.append("note: the gpu profile trains full-size models; without CUDA they run on the CPU, slowly")
    return lines


CHECKS = (check_versions, check_accelerator, check_data_mirror, check_cache, check_profile)


def run() -> int:
    """Print the report; 0 when the course can run, 1 when a problem needs fixing first."""
    lines = [line for check in CHECKS for line in check()]
    problems = sum(line.startswith("problem:") for line in lines)
    lines.append(f"{problems} problem(s) to fix." if problems else "All set: the course can run.")
    print("\n".join(lines))
    return 1 if problems else 0
