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

from . import costs, data, runtime

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
    if torch.cuda.is_available():
        device = torch.device("cuda")
        name = torch.cuda.get_device_name(device)
        major, minor = torch.cuda.get_device_capability(device)
        lines = [f"CUDA: {name} (compute capability {major}.{minor}), native bf16: "
                 f"{'yes' if costs.native_bf16(device) else 'no'}"]
    else:
        device = torch.device("cpu")
        mps = "MPS available" if torch.backends.mps.is_available() else "no MPS"
        lines = [f"CUDA: not available ({mps}); training runs on {torch.get_num_threads()} CPU threads"]
    try:
        return lines + (gpu_figures(name) if device.type == "cuda" else []) + energy(device)
    except ValueError as err:  # a malformed override
        return lines + [problem(f"{err}.", f"set {costs.PEAK_ENV} (TFLOP/s) and {costs.WATTS_ENV} (W) "
                                           "to numbers, or unset them.")]


def gpu_figures(name: str) -> list:
    (peak, peak_from), (watts, watts_from) = costs.gpu_spec_sources(name)
    peak_text = f"{peak / 1e12:.0f} TFLOP/s ({peak_from})" if peak else f"unknown, so no MFU (set {costs.PEAK_ENV})"
    watts_text = f"{watts:.0f} W ({watts_from})" if watts else f"unknown (set {costs.WATTS_ENV})"
    return [f"GPU peak bf16: {peak_text}; board power: {watts_text}"]


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
    except OSError as err:
        return [problem(f"the course cache cannot be created ({err}).",
                        f"set {runtime.CACHE_ENV} to a writable directory.")]
    folder = root / "checkpoints"
    found = sorted(d.name for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []
    listed = ", ".join(found) if found else "none yet (`python -m course_lib checkpoints` trains them)"
    return [f"cache {root}; course checkpoints: {listed}"]


def check_profile() -> list:
    try:
        name = runtime.profile()
    except ValueError as err:
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
