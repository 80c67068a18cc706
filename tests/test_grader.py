"""The grader: small notebooks built here, each graded by a real check from course_lib.exercises.

Kept cheap on purpose (one kernel per notebook, a few seconds each); running every notebook's student
copy is `python -m course_lib check --student-copies`, for instructors (HOMEWORK.md), not this suite.
"""
import contextlib
import csv
import io
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib import cli, grader, homework, runtime

IMPORTS = "from course_lib import exercises\nimport course_lib.exercises.big_picture"
FLOPS = '''def training_flops(n_params, n_tokens):
    # BEGIN SOLUTION
    return {answer}
    # END SOLUTION

exercises.grade("Exercise 1", exercises.big_picture.check_training_flops, training_flops)
'''
CO2 = '''def co2_grams(kwh, kg_per_kwh):
    # BEGIN SOLUTION
    return {answer}
    # END SOLUTION

exercises.grade("Exercise 2", exercises.big_picture.check_co2_grams, co2_grams)
'''
RIGHT = (FLOPS.format(answer="6 * n_params * n_tokens"), CO2.format(answer="kwh * kg_per_kwh * 1000"))


def notebook(path: Path, *sources) -> Path:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


def run_cli(*args):
    """(exit status, stdout) of `python -m course_lib ...`, in this process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        cli.main(list(args))
    return exit_.value.code, out.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """An instructor's folder of four submissions, checked in one command."""
    tmp = tmp_path_factory.mktemp("submissions")
    solved = notebook(tmp / "solved.ipynb", IMPORTS, *RIGHT)
    student = homework.student_copy(notebook(tmp / "student.ipynb", IMPORTS, *RIGHT), tmp / "homework")
    submissions = [solved, student,
                   notebook(tmp / "wrong.ipynb", IMPORTS, FLOPS.format(answer="1 / 0"),
                            CO2.format(answer="kwh * kg_per_kwh")),
                   notebook(tmp / "broken.ipynb", IMPORTS, "import not_a_module", *RIGHT)]
    status, out = run_cli("check", *map(str, submissions), "--csv", str(tmp / "out" / "grades.csv"))
    rows = list(csv.DictReader((tmp / "out" / "grades.csv").open(encoding="utf-8")))
    return status, out, {(Path(r["notebook"]).stem, r["exercise"]): (r["status"], r["detail"]) for r in rows}


def test_several_notebooks_give_a_csv_and_exit_1(folder):
    status, out, rows = folder
    assert status == 1
    assert "2 of 8 graded exercises correct" in out
    assert len(rows) == 8


def test_solved_notebook_is_correct(folder):
    assert folder[2][("solved", "Exercise 1")] == folder[2][("solved", "Exercise 2")] == ("correct", "")


def test_student_copy_is_not_attempted(folder):
    assert folder[2][("student", "Exercise 1")] == folder[2][("student", "Exercise 2")] == ("not attempted", "")


def test_wrong_answer_gets_the_checks_hint_and_a_crash_is_one_line(folder):
    rows = folder[2]
    assert rows[("wrong", "Exercise 1")] == ("crashed", "ZeroDivisionError: division by zero")
    status, hint = rows[("wrong", "Exercise 2")]
    assert status == "wrong" and "which is in kilograms (kWh x kg/kWh = kg); the question asks for grams" in hint
    assert "wrong" in folder[1] and "the question asks for grams" in folder[1]


def test_a_notebook_that_stops_early_reports_its_exercises_as_not_run(folder):
    where = "the notebook stopped at cell 2: ModuleNotFoundError: No module named 'not_a_module'"
    assert folder[2][("broken", "Exercise 1")] == folder[2][("broken", "Exercise 2")] == ("not run", where)
    assert "Traceback" not in folder[1]


def test_exit_0_only_when_every_exercise_passes(tmp_path):
    status, out = run_cli("check", str(notebook(tmp_path / "solved.ipynb", IMPORTS, *RIGHT)))
    assert status == 0 and "2 of 2 graded exercises correct" in out
    assert not (tmp_path / "grades.csv").exists()


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing.ipynb", "missing.ipynb: no such file"),
    (lambda tmp: (tmp / "notes.ipynb").write_text("not json") and tmp / "notes.ipynb", "is not a Jupyter notebook"),
    (lambda tmp: notebook(tmp / "plain.ipynb", "x = 1"), "has no graded exercises"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, make, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["check", str(make(tmp_path))])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_student_copy_of_notebook_03_runs_and_reports_every_exercise_not_attempted(tmp_path):
    student = homework.student_copy(Path("notebooks/03_attention_transformer.ipynb"), tmp_path)
    results = grader.check_notebook(student)
    assert len(results) == 3
    assert {r.status for r in results} == {"not attempted"}


NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_solution_notebooks_grade_every_exercise_correct(path):
    """Read from the committed outputs, which nbval re-creates in this same suite by executing each
    notebook: a solution that stopped passing would fail there, and a grade cell whose output is not
    "correct!" fails here. Notebooks 01-12 have at least two graded exercises each (HOMEWORK.md)."""
    results = grader.grades(nbformat.read(path, as_version=4), path.name)
    assert len(results) >= 2, f"{path.name} has {len(results)} graded exercise(s)"
    assert [(r.exercise, r.status) for r in results] == [(r.exercise, grader.CORRECT) for r in results]


# --- the run's surroundings: a temporary folder, a scrubbed environment, a memory limit ----------

SECRETS = ("HF_TOKEN", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY")
BUDGET = '{"labels": 500, "accuracy": 0.8}\n'  # a course folder's own benchmarks/label_budget.jsonl


def probe(name: str, *lines: str) -> str:
    """A cell that grades ``lines`` (asserts about the kernel's surroundings) as the exercise ``name``:
    one kernel answers every probe, each in its own row."""
    body = "".join(f"\n    {line}" for line in lines)
    return f"def probe():{body}\n\nexercises.grade({name!r}, probe)"


SETUP = f"""{IMPORTS}
import os
from pathlib import Path
BENCHMARKS = Path("..") / "benchmarks"
"""
READ_BUDGET = ('text = (BENCHMARKS / "label_budget.jsonl").read_text()', "assert text == BUDGET, text")
PROBES = (
    probe("working folder", 'Path("scratch.txt").write_text("a file the learner writes")',
          'assert Path.cwd() == Path.home() / "notebooks", (Path.cwd(), Path.home())'),
    probe("environment", f"leaked = set({SECRETS!r}) & set(os.environ)", "assert not leaked, leaked",
          "assert os.environ.get('COURSE_CACHE_DIR') == CACHE, os.environ.get('COURSE_CACHE_DIR')"),
    probe("benchmarks", *READ_BUDGET, '(BENCHMARKS / "label_budget.jsonl").write_text("changed by the learner")'),
)


@pytest.fixture(scope="module")
def surroundings(tmp_path_factory):
    """A submission in a course folder with its own benchmarks/, checked with tokens in the grader's environment."""
    course = tmp_path_factory.mktemp("course")
    (course / "benchmarks").mkdir()
    (course / "benchmarks" / "label_budget.jsonl").write_text(BUDGET)
    (course / "submissions").mkdir()
    constants = f"CACHE = {str(runtime.cache_dir())!r}\nBUDGET = {BUDGET!r}"
    path = notebook(course / "submissions" / "probe.ipynb", SETUP + constants, *PROBES)
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in SECRETS:
            monkeypatch.setenv(name, "a secret")
        results = grader.check_notebook(path, timeout=120)
    return course, {r.exercise: (r.status, r.detail) for r in results}


def test_a_file_the_notebook_writes_is_not_left_in_the_submissions_folder(surroundings):
    course, rows = surroundings
    assert rows["working folder"] == ("correct", "")
    assert [p.name for p in (course / "submissions").iterdir()] == ["probe.ipynb"]


def test_the_kernel_gets_no_tokens_but_the_course_cache(surroundings):
    assert surroundings[1]["environment"] == ("correct", "")


def test_the_notebook_reads_a_copy_of_the_benchmarks_beside_its_folder(surroundings):
    course, rows = surroundings
    assert rows["benchmarks"] == ("correct", "")
    assert (course / "benchmarks" / "label_budget.jsonl").read_text() == BUDGET


LINUX = sys.platform == "linux"  # where the memory limit (RLIMIT_DATA) is enforced


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """A submission with no benchmarks/ beside its folder; on Linux its last exercise allocates 4 GiB under a
    1 GiB limit (elsewhere the allocation would succeed, so it is left out)."""
    committed = (Path(grader.__file__).parent.parent / "benchmarks" / "label_budget.jsonl").read_text()
    cells = [SETUP + f"BUDGET = {committed!r}", probe("benchmarks", *READ_BUDGET)]
    hog = [FLOPS.format(answer="len(bytearray(4 * 2**30))")] if LINUX else []
    path = notebook(tmp_path_factory.mktemp("alone") / "hog.ipynb", *cells, *hog)
    return {r.exercise: (r.status, r.detail) for r in grader.check_notebook(path, timeout=120, memory_gb=1)}


def test_without_benchmarks_beside_it_the_notebook_reads_the_repositorys(alone):
    assert alone["benchmarks"] == ("correct", "")


@pytest.mark.skipif(not LINUX, reason="the memory limit (RLIMIT_DATA) is enforced on Linux only")
def test_a_cell_over_the_memory_limit_crashes_in_one_line(alone):
    assert alone["Exercise 1"] == ("crashed", "MemoryError: out of memory (over the check's memory limit?)")
