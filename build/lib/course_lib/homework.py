"""Student copies of the notebooks: the same notebook with every marked solution removed.

In the source notebooks (which CI runs with solutions) a solution sits between two comment lines::

    # BEGIN SOLUTION
    ...the answer...
    # END SOLUTION

The student copy keeps the indentation and puts ``raise NotImplementedError`` in its place, so the
notebook still runs and the exercise's check reports "not attempted yet". Cells tagged ``solution``
(answer notes to the ungraded exercises) are left out of the student copy altogether.
"""
import re
from pathlib import Path

import nbformat

SOLUTION = re.compile(r"^([ \t]*)# BEGIN SOLUTION\n.*?^[ \t]*# END SOLUTION[ \t]*$", re.M | re.S)


def strip_solutions(source: str) -> str:
    return SOLUTION.sub(lambda m: f"{m.group(1)}raise NotImplementedError  # your code here", source)


def student_copy(notebook: Path, out_dir: Path) -> Path:
    """Write ``notebook`` without solutions and outputs into ``out_dir``; return the new path."""
    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [cell for cell in nb.cells if "solution" not in cell.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / notebook.name
    nbformat.write(nb, target)
    return target


def build(notebooks_dir: Path = Path("notebooks"), out_dir: Path = Path("homework")) -> list:
    """Student copies of every notebook that has exercises with solutions."""
    return [student_copy(nb, out_dir) for nb in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
            if "# BEGIN SOLUTION" in nb.read_text(encoding="utf-8")]
