"""The wheel stands on its own: built from the repository and installed without the checkout, the library runs.

The test environment has every dependency already; the wheel goes into a folder of its own, put first on
``PYTHONPATH``, and the commands run from a folder outside the checkout: what they import is the wheel's.
"""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRADED = """
from course_lib import exercises
from course_lib.exercises import big_picture
import course_lib
print(course_lib.__file__)
exercises.grade("Exercise 1", big_picture.check_training_flops, lambda n_params, n_tokens: 6 * n_params * n_tokens)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(folder the wheel is installed in, the wheel's file names)."""
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(root / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((root / "dist").glob("course_lib-*.whl"))
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                              str(root / "site"), str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    return root / "site", zipfile.ZipFile(wheel).namelist()


def run(installed, *argv, cwd):
    site, _ = installed
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(cwd),
                               "COURSE_CACHE_DIR": str(cwd / "cache"), "HF_HUB_OFFLINE": "1",
                               "COURSE_CPU_PEAK_GFLOPS": "50"})


def test_the_wheel_holds_every_module_the_library_needs(installed):
    _, names = installed
    packaged = {name for name in names if name.startswith("course_lib/")}
    for path in (ROOT / "course_lib").rglob("*"):
        if path.suffix in (".py", ".txt") and "__pycache__" not in path.parts:
            assert path.relative_to(ROOT).as_posix() in packaged, path


def test_the_installed_wheel_runs_the_doctor_and_a_graded_check_outside_the_checkout(installed, tmp_path):
    doctor = run(installed, "-m", "course_lib", "doctor", cwd=tmp_path)
    assert "no requirements.txt beside the package" in doctor.stdout, doctor.stdout + doctor.stderr
    assert "Traceback" not in doctor.stderr
    graded = run(installed, "-c", GRADED, cwd=tmp_path)
    assert graded.returncode == 0, graded.stderr[-2000:]
    where, verdict = graded.stdout.splitlines()[-2:]
    assert where.startswith(str(installed[0])) and verdict == "Exercise 1: correct!"
