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
    assert "Exercise 1: correct!" in solved.cells[0].outputs[0].text
