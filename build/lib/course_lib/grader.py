"""Grading a learner's notebook: run it, then read each graded exercise's outcome from its cell.

The graded exercises are the ``exercises.grade("Exercise N", check, ...)`` calls in the notebook's cells;
``grade`` prints "Exercise N: correct!" or raises ``CheckFailed`` with the check's hint (or "not attempted
yet" when the student copy's ``raise NotImplementedError`` is still there). So the grader needs no answer
key: it executes the notebook and sorts each call into correct / not attempted / wrong / crashed / not run.

A cell that holds a grade call may fail (that is the learner's result); any other failing cell stops the
run, because every later cell would fail with it, and the exercises after it are reported as not run, with
where and why it stopped.

Each notebook runs in a temporary folder with a scrubbed environment, a time limit per cell and a memory
limit for its kernel, so that an ordinary mistake cannot litter the submissions folder, hand the instructor's
tokens to the notebook or stall the grader. That is not a sandbox: the kernel still runs with the instructor's
user rights, can read what that user can read and can use the network (HOMEWORK.md, section 2).
"""
import csv
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from tqdm.auto import tqdm

from . import runtime
from .errors import CourseError

GRADE_CALL = re.compile(r"""exercises\.grade\(\s*(['"])(.+?)\1""")
CORRECT, NOT_ATTEMPTED, WRONG, CRASHED, NOT_RUN = "correct", "not attempted", "wrong", "crashed", "not run"
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
BENCHMARK_RESULTS = ("*.jsonl", "*.safetensors", "*.md")  # what the notebooks read; not the scripts that wrote them
# passed to the kernel as they are; anything else (HF_TOKEN, GITHUB_TOKEN, AWS_*, ...) is dropped
KERNEL_ENV = {"PATH", "LANG", "TZ", "TMPDIR", "PYTHONHASHSEED", "TOKENIZERS_PARALLELISM", "HF_HUB_OFFLINE",
              "HF_DATASETS_OFFLINE", "HF_ENDPOINT", "VIRTUAL_ENV", "CUDA_VISIBLE_DEVICES"}
KERNEL_ENV_PREFIXES = ("LC_", "OMP_", "MKL_", "COURSE_")
# RLIMIT_DATA counts the memory a process can write to (heap, anonymous mappings), not the address space it
# only reserves: RLIMIT_AS would also count CUDA's and glibc's reservations and fail long before memory runs out
LIMIT_MEMORY = """try:
    (lambda r: r.setrlimit(r.RLIMIT_DATA, ({n}, {n})))(__import__("resource"))
except (ImportError, ValueError, OSError):  # no resource module (Windows) or a limit refused: run without it
    pass"""


@dataclass
class Result:
    notebook: str
    exercise: str
    status: str
    detail: str = ""


def read_notebook(path: Path):
    """The notebook at ``path``, or a one-line ``CourseError`` saying why it is not one."""
    if not path.is_file():
        raise CourseError(f"{path}: no such file; give the path of a notebook (.ipynb)")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises JSON, validation and encoding errors alike
        raise CourseError(f"{path} is not a Jupyter notebook ({type(err).__name__}); give an .ipynb file") from None


def graded(cell) -> list:
    """Names of the exercises a code cell grades, in order."""
    return [m.group(2) for m in GRADE_CALL.finditer(cell.source)] if cell.cell_type == "code" else []


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def error_of(cell):
    return next((o for o in cell.get("outputs", []) if o.output_type == "error"), None)


def printed(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def outcomes(cell) -> list:
    """(exercise, status, detail) for each grade call of an executed cell."""
    error, text, found, failed = error_of(cell), printed(cell), [], False
    for name in graded(cell):
        if f"{name}: correct!" in text:
            found.append((name, CORRECT, ""))
        elif error is None or failed:
            found.append((name, NOT_RUN, "the cell stopped before this check" if failed else "the check never ran"))
        else:
            failed = True
            found.append((name, *classify(error)))
    return found


def classify(error) -> tuple:
    """The status and one-line detail of a failed grade cell."""
    message = one_line(error.evalue)
    if error.ename == "NotImplementedError" or "not attempted yet" in message:
        return NOT_ATTEMPTED, ""
    if error.ename == "CheckFailed":
        return WRONG, message
    return CRASHED, crash(error)


def crash(error) -> str:
    """One line for an error; a bare ``MemoryError`` says nothing, so this says it is the memory limit."""
    if error.ename == "MemoryError" and not error.evalue:
        return "MemoryError: out of memory (over the check's memory limit?)"
    return one_line(f"{error.ename}: {error.evalue}")


@contextmanager
def workspace(path: Path):
    """A temporary home for running the notebook at ``path``, deleted afterwards.

    The kernel starts in ``home/notebooks``, so files a notebook writes do not land among the submissions;
    ``home/benchmarks`` holds copies (never links, which would let the notebook change the originals) of
    the results the course notebooks read as ``Path("..") / "benchmarks"``.
    """
    # ignore_cleanup_errors: a file the notebook left read-only must not turn its grades into a traceback
    with tempfile.TemporaryDirectory(prefix="course-check-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp)
        (home / "notebooks").mkdir()
        (home / "benchmarks").mkdir()
        for result in benchmark_results(path):
            shutil.copyfile(result, home / "benchmarks" / result.name)
        yield home


def benchmark_results(path: Path) -> list:
    """The result files the notebook at ``path`` would read from ``../benchmarks``.

    From the course's ``benchmarks/`` beside the notebook's folder (``homework/``, ``submissions/``),
    else from the repository's, found from this package; none when neither exists.
    """
    beside = path.resolve().parent.parent / "benchmarks"
    folder = next((f for f in (beside, BENCHMARKS) if f.is_dir()), None)
    return [result for pattern in BENCHMARK_RESULTS for result in folder.glob(pattern)] if folder else []


def kernel_env(home: Path) -> dict:
    """The kernel's environment: an allow-list of the grader's, with ``HOME`` in the temporary folder.

    The caches are passed as the grader resolved them: under the new ``HOME`` their defaults would be
    empty, and the course's checkpoints and data would be rebuilt or downloaded for every notebook.
    ``HF_HOME`` itself is not passed, because the Hub's login token is stored in it.
    """
    import datasets.config
    import huggingface_hub.constants

    env = {name: value for name, value in os.environ.items()
           if name in KERNEL_ENV or name.startswith(KERNEL_ENV_PREFIXES)}
    return env | {"HOME": str(home), runtime.CACHE_ENV: str(runtime.cache_dir()),
                  "HF_HUB_CACHE": str(huggingface_hub.constants.HF_HUB_CACHE),
                  "HF_DATASETS_CACHE": str(datasets.config.HF_DATASETS_CACHE)}


def execute(nb, workdir: Path, timeout: int, label: str, memory_gb: float = 0, env: dict | None = None):
    """Run ``nb`` cell by cell; return (index, reason) of the cell where it stopped, or None.

    ``env``: the kernel's whole environment (default: the grader's). ``memory_gb`` (0: no limit) is set by
    the kernel itself as it starts (IPython's ``exec_lines``), so no cell, output or execution count shows it.
    """
    # log_level: the kernel's start-up warnings (e.g. about its local TCP transport) are not the learner's concern
    arguments = ["--IPKernelApp.log_level=ERROR"]
    if memory_gb:
        arguments.append(f"--IPKernelApp.exec_lines={LIMIT_MEMORY.format(n=int(memory_gb * 2**30))}")
    client = NotebookClient(nb, timeout=timeout, allow_errors=True, resources={"metadata": {"path": str(workdir)}},
                            extra_arguments=arguments)
    with client.setup_kernel(env=dict(os.environ) if env is None else env):
        for index, cell in enumerate(tqdm(nb.cells, desc=label, unit="cell", leave=False)):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellTimeoutError:
                return index, f"did not finish within {timeout} s"
            except DeadKernelError:
                return index, "the kernel died (out of memory?)"
            error = error_of(cell)
            if error is not None and not graded(cell):
                return index, crash(error)
    return None


def check_notebook(path: Path, timeout: int = 900, memory_gb: float = 8) -> list:
    """Execute the notebook at ``path`` and return one ``Result`` per graded exercise.

    It runs in a temporary folder (``workspace``) with a scrubbed environment (``kernel_env``); each cell may
    take ``timeout`` seconds, and the kernel ``memory_gb`` GiB of memory (0: no limit).
    """
    nb = read_notebook(path)
    if not any(graded(cell) for cell in nb.cells):
        raise CourseError(f"{path} has no graded exercises (no exercises.grade(...) call); give a course notebook")
    with workspace(path) as home:
        stopped = execute(nb, home / "notebooks", timeout, path.stem, memory_gb=memory_gb, env=kernel_env(home))
    return grades(nb, str(path), stopped=stopped)


def grades(nb, name: str, stopped=None) -> list:
    """One ``Result`` per graded exercise of the executed notebook ``nb``, read from its outputs.

    ``stopped`` is ``execute``'s answer: exercises in and after the cell where a run stopped were not run.
    The suite also reads the committed solution notebooks with it (their outputs are the ones nbval
    re-creates), which is how it knows that every solution is graded correct.
    """
    results = []
    for index, cell in enumerate(nb.cells):
        if stopped and index >= stopped[0]:
            where = f"the notebook stopped at cell {stopped[0] + 1}: {stopped[1]}"
            results += [Result(name, exercise, NOT_RUN, where) for exercise in graded(cell)]
        else:
            results += [Result(name, *outcome) for outcome in outcomes(cell)]
    return results


def report(results: list) -> str:
    """One row per exercise, aligned, the way a learner reads them."""
    rows = [(r.notebook, r.exercise, r.status, r.detail) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows)


def write_csv(results: list, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["notebook", "exercise", "status", "detail"])
        writer.writerows((r.notebook, r.exercise, r.status, r.detail) for r in results)


def passed(results: list) -> bool:
    return all(r.status == CORRECT for r in results)
