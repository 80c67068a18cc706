"""Grading a learner's notebook: run it, then read each graded exercise's outcome from its cell.

The graded exercises are the ``exercises.grade("Exercise N", check, ...)`` calls in the notebook's cells;
``grade`` prints "Exercise N: correct!" or raises ``CheckFailed`` with the check's hint (or "not attempted
yet" when the student copy's ``raise NotImplementedError`` is still there). So the grader needs no answer
key: it executes the notebook and sorts each call into correct / not attempted / wrong / crashed / not run.

A cell that holds a grade call may fail (that is the learner's result); any other failing cell stops the
run, because every later cell would fail with it, and the exercises after it are reported as not run, with
where and why it stopped.
"""
import csv
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from tqdm.auto import tqdm

from .errors import CourseError

GRADE_CALL = re.compile(r"""exercises\.grade\(\s*(['"])(.+?)\1""")
CORRECT, NOT_ATTEMPTED, WRONG, CRASHED, NOT_RUN = "correct", "not attempted", "wrong", "crashed", "not run"


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
    return CRASHED, one_line(f"{error.ename}: {error.evalue}")


def execute(nb, workdir: Path, timeout: int, label: str):
    """Run ``nb`` cell by cell; return (index, reason) of the cell where it stopped, or None."""
    # log_level: the kernel's start-up warnings (e.g. about its local TCP transport) are not the learner's concern
    client = NotebookClient(nb, timeout=timeout, allow_errors=True, resources={"metadata": {"path": str(workdir)}},
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    with client.setup_kernel():
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
                return index, one_line(f"{error.ename}: {error.evalue}")
    return None


def check_notebook(path: Path, timeout: int = 900) -> list:
    """Execute the notebook at ``path`` and return one ``Result`` per graded exercise."""
    nb = read_notebook(path)
    if not any(graded(cell) for cell in nb.cells):
        raise CourseError(f"{path} has no graded exercises (no exercises.grade(...) call); give a course notebook")
    return grades(nb, str(path), stopped=execute(nb, path.parent, timeout, path.stem))


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
