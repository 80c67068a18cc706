"""The Korean edition: each translated notebook is current with its English text, keeps its figures, reads as
Korean, and is committed exactly as ``python -m course_lib translate`` writes it.

No test here executes a notebook: a Korean notebook's code cells and outputs are the English ones, which nbval
checks (``notebooks_ko/`` is not among pytest's testpaths).
"""
from pathlib import Path

import nbformat
import pytest

from course_lib import translate
from course_lib.errors import CourseError

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TRANSLATED = [nb for nb in NOTEBOOKS if translate.translation_path(nb, root=ROOT / "translations").is_file()]


def pairs(notebook: Path):
    """(English cell, its Korean text) for every markdown cell."""
    done = translate.read_translation(translate.translation_path(notebook, root=ROOT / "translations"))
    nb = nbformat.read(notebook, as_version=4)
    return [(cell, done[cell.id][1]) for cell in translate.markdown_cells(nb) if cell.id in done]


@pytest.mark.parametrize("notebook", TRANSLATED, ids=lambda path: path.name[:2])
def test_every_markdown_cell_has_a_current_translation(notebook):
    behind = translate.stale(notebook, root=ROOT / "translations")
    assert behind == [], (f"{notebook.name}: {behind[:5]} ... - `python -m course_lib translate --lang ko --stale` "
                          "lists each with the English text to translate")


@pytest.mark.parametrize("notebook", TRANSLATED, ids=lambda path: path.name[:2])
def test_a_translation_keeps_the_numbers_code_math_links_and_slide_markers(notebook):
    differ = [(cell.id, kind) for cell, korean in pairs(notebook)
              for kind, kept in translate.kept(cell.source).items() if translate.kept(korean)[kind] != kept]
    assert differ == [], f"{notebook.name}: cells whose Korean changed what must stay as in English: {differ}"


@pytest.mark.parametrize("notebook", TRANSLATED, ids=lambda path: path.name[:2])
def test_a_translation_reads_as_korean(notebook):
    english = [cell.id for cell, korean in pairs(notebook) if translate.hangul_share(korean) < 0.5]
    assert english == [], f"{notebook.name}: cells under half Hangul (outside code, math and names): {english}"


@pytest.mark.parametrize("notebook", TRANSLATED, ids=lambda path: path.name[:2])
def test_the_committed_korean_notebook_is_the_generated_one_with_the_english_code_and_outputs(notebook):
    committed = nbformat.read(ROOT / translate.edition_dir("ko") / notebook.name, as_version=4)
    assert committed == translate.translated(notebook, root=ROOT / "translations"), \
        "run `python -m course_lib translate --lang ko` and commit notebooks_ko/"
    english = nbformat.read(notebook, as_version=4)
    code = lambda nb: [(c.id, c.source, c.outputs) for c in nb.cells if c.cell_type == "code"]
    assert code(committed) == code(english)


def test_a_changed_english_cell_makes_its_translation_stale_and_the_build_refuse(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 01 · Title (제목)\n\nThe 3 steps."),
                                         nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(nb, path)
    nb = nbformat.read(path, as_version=4)
    cell = nb.cells[0]
    root = tmp_path / "translations"
    (root / "ko").mkdir(parents=True)
    translate.translation_path(path, root=root).write_text(translate.format_translation(
        [(cell.id, translate.english_hash(cell.source), "# 01 · 제목 (Title)\n\n세 단계 3가지.")]), encoding="utf-8")
    assert translate.stale(path, root=root) == []
    assert translate.translated(path, root=root).cells[0].source.startswith("# 01 · 제목")
    cell.source = cell.source.replace("3 steps", "4 steps")
    nbformat.write(nb, path)
    assert translate.stale(path, root=root) == [(cell.id, "the English text changed since it was translated")]
    with pytest.raises(CourseError, match="no current ko translation"):
        translate.translated(path, root=root)
    assert translate.kept("The 4 steps, `x`, $a^2$")["numbers"] != translate.kept("세 단계 3가지, `x`, $a^2$")["numbers"]
