"""Seeds, threads, profiles and the cache: the things every notebook sets up first.

A notebook calls ``course_lib.setup()`` once at the top. Its outputs then depend only on
the code, the pinned library versions and the seed, which is what lets CI compare them.
"""
import importlib.metadata
import logging
import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError

PROFILE_ENV = "COURSE_PROFILE"
CACHE_ENV = "COURSE_CACHE_DIR"
PROFILES = ("cpu", "gpu")
HANGUL_FONT = ("koreanize-matplotlib", "koreanize_matplotlib/fonts/NanumGothic.ttf")  # (package, file in it)


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a run can be repeated exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0, threads: int = 2, deterministic: bool | None = None) -> str:
    """Make a notebook or script reproducible and quiet; return the active profile.

    Thread count is fixed because float sums on CPU are ordered by thread, so two machines
    with different core counts would print different last digits. On CPU the course's runs repeat
    bit for bit either way. ``deterministic`` also asks the GPU for it: PyTorch's deterministic
    kernels, cuBLAS with a fixed workspace, and uninitialised memory filled before use. That is
    slower, so it is the default only under the ``cpu`` profile (whose outputs the tests compare);
    the ``gpu`` profile and the command line ask for it only when told (``--deterministic``). Even
    then a GPU run repeats only on the same GPU model, driver and library versions.
    """
    active = profile()
    deterministic = active == "cpu" if deterministic is None else deterministic
    seed_everything(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when CUDA starts
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet_libraries()
    hangul_in_plots()
    return active


def quiet_libraries() -> None:
    """Silence library chatter (load reports, progress bars of downloads) that is not teaching."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    warnings.filterwarnings("ignore", message="IProgress not found")  # no ipywidgets: tqdm falls back to text
    import datasets  # imported after the filters: importing them already warns
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    logging.getLogger("gensim").setLevel(logging.ERROR)


def hangul_in_plots() -> None:
    """Let every plot draw Hangul: NanumGothic (shipped by a PyPI package) after the default font.

    matplotlib takes each character from the first font in ``font.family`` that has it, so English
    text keeps the default sans-serif (DejaVu Sans) exactly as before, and only characters it lacks,
    such as Hangul, come from NanumGothic. The font file is found through the package's metadata:
    importing ``koreanize_matplotlib`` would make NanumGothic the font of every text instead.
    """
    import matplotlib
    from matplotlib import font_manager

    package, name = HANGUL_FONT
    path = importlib.metadata.distribution(package).locate_file(name)
    font_manager.fontManager.addfont(str(path))
    family = font_manager.FontProperties(fname=str(path)).get_name()
    matplotlib.rcParams["font.family"] = ["sans-serif", family]


def profile() -> str:
    """The size profile: ``cpu`` (default, fits a laptop) or ``gpu`` (full-size runs)."""
    name = os.environ.get(PROFILE_ENV, "cpu").strip().lower() or "cpu"
    if name not in PROFILES:
        raise ConfigError(f"{PROFILE_ENV}={name!r} is not a profile; set it to {' or '.join(PROFILES)}, or unset it")
    return name


def cache_dir() -> Path:
    """Where the course keeps derived data and its own checkpoints (``COURSE_CACHE_DIR``), created if missing."""
    default = Path.home() / ".cache" / "nlp-course"
    path = Path(os.environ.get(CACHE_ENV) or default).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"the course cache {path} ({CACHE_ENV}) is a file, or lies under one; "
                          f"set {CACHE_ENV} to a directory") from None
    except OSError as err:
        raise ConfigError(f"the course cache {path} ({CACHE_ENV}) cannot be created ({err.strerror}); "
                          f"set {CACHE_ENV} to a directory you can write to") from None
    return path
