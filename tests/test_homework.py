"""Student copies: solutions removed, the notebook still runs, and the check says what to do."""
import nbformat
from nbclient import NotebookClient

from course_lib import homework

SOLVED = '''from course_lib import exercises

def double(x):
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION

def check_double(fn):
    exercises.expect(fn(3) == 6, f"double(3) should be 6, got {fn(3)}")

exercises.grade("Exercise 1", check_double, double)
'''


def test_strip_solutions_keeps_indentation():
    stripped = homework.strip_solutions(SOLVED)
    assert "return 2 * x" not in stripped
    assert "    raise NotImplementedError  # your code here" in stripped


def test_answer_notes_stay_out_of_the_student_copy(tmp_path):
    notes = nbformat.v4.new_markdown_cell("**Answer notes.** The loss falls.", metadata={"tags": ["solution"]})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("**Exercise 4.** Explore."), notes])
    nbformat.write(nb, tmp_path / "10_demo.ipynb")
    student = nbformat.read(homework.student_copy(tmp_path / "10_demo.ipynb", tmp_path / "homework"), as_version=4)
    assert [cell.source for cell in student.cells] == ["**Exercise 4.** Explore."]


def test_student_copy_runs_and_its_check_explains(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SOLVED)])
    source = tmp_path / "01_demo.ipynb"
    nbformat.write(nb, source)
    student = homework.student_copy(source, tmp_path / "homework")
    executed = NotebookClient(nbformat.read(student, as_version=4), allow_errors=True).execute()
    error = next(o for o in executed.cells[0].outputs if o.output_type == "error")
    assert error.ename == "CheckFailed"
    assert "Exercise 1: not attempted yet" in error.evalue

    solved = NotebookClient(nbformat.read(source, as_version=4)).execute()
    printed = "".join(o.text for o in solved.cells[0].outputs if o.output_type == "stream" and o.name == "stdout")
    assert "Exercise 1: correct!" in printed


def test_every_course_notebook_has_a_clean_student_copy(tmp_path):
    copies = homework.build(out_dir=tmp_path)
    assert len(copies) >= 5
    for path in copies:
        text = path.read_text(encoding="utf-8")
        assert "# BEGIN SOLUTION" not in text and "# END SOLUTION" not in text, path.name
        assert "raise NotImplementedError" in text and "exercises.grade(" in text, path.name


def test_student_copy_of_notebook_00_runs_and_explains(tmp_path):
    """The real front-door notebook: every cell runs, and each graded check asks for the learner's code."""
    from pathlib import Path

    student = homework.student_copy(Path("notebooks/00_transfer_learning_big_picture.ipynb"), tmp_path)
    executed = NotebookClient(nbformat.read(student, as_version=4), allow_errors=True,
                              resources={"metadata": {"path": "notebooks"}}).execute()
    errors = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs
              if o.output_type == "error"]
    assert [e.ename for e in errors] == ["CheckFailed", "CheckFailed"]
    assert all("not attempted yet" in e.evalue for e in errors)
