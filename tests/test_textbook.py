"""Every notebook is built like a textbook chapter: the parts a learner and an instructor rely on are there.

A title with its Korean title, goals, prerequisites and a time budget; a recap; and exercises that each
say their kind — a graded one has a check the notebook runs, any other one an answer note for the
instructor (a ``solution`` cell, left out of the student copy).
"""
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISE = re.compile(r"\*\*Exercise (\d+)(?: \((graded|explore|discussion)\))?\.\*\*")
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def markdown(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "markdown"]


@pytest.fixture(params=NOTEBOOKS, ids=lambda path: path.name[:2])
def notebook(request):
    return request.param.name, nbformat.read(request.param, as_version=4)


def test_the_title_cell_says_what_where_and_how_long(notebook):
    name, nb = notebook
    title = nb.cells[0].source
    first_line = title.splitlines()[0]
    assert first_line.startswith(f"# {name[:2]} · ") and HANGUL.search(first_line), first_line
    assert "**Learning goals.**" in title or "**You will**" in title
    assert "**Prerequisites.**" in title and "**Time.**" in title


def test_a_recap_closes_the_chapter(notebook):
    _, nb = notebook
    assert any(re.search(r"^#+ .*Recap", cell.source, re.MULTILINE) for cell in markdown(nb))


def test_every_exercise_says_its_kind_and_has_a_check_or_an_answer_note(notebook):
    _, nb = notebook
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    notes = " ".join(cell.source for cell in markdown(nb) if "solution" in cell.metadata.get("tags", []))
    exercises = [match.groups() for cell in markdown(nb) for match in EXERCISE.finditer(cell.source)]
    assert len(exercises) >= 3
    assert [int(number) for number, _ in exercises] == list(range(1, len(exercises) + 1))
    for number, kind in exercises:
        assert kind, f"exercise {number} does not say whether it is graded, explore or discussion"
        if kind == "graded":
            assert re.search(rf'exercises\.grade\("Exercise {number}"', code), f"exercise {number} has no check"
        else:
            assert f"**Answer note (exercise {number}).**" in notes, f"exercise {number} has no answer note"
