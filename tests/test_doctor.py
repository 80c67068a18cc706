"""``doctor.run``: 0 when the course can run, 1 with a named problem and its fix otherwise."""
import shutil

import pytest
import torch
from test_costs import fake_gpu

from course_lib import costs, data, doctor


@pytest.fixture(autouse=True)
def clean_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("COURSE_PROFILE", "COURSE_GPU_PEAK_TFLOPS", "COURSE_GPU_WATTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COURSE_CPU_PEAK_GFLOPS", "60")  # a measurement would take a second per test


@pytest.fixture
def mirror():
    root = data.mirror_dir()
    if root is None:
        pytest.skip("COURSE_DATA_DIR is not set")
    return root


def report(capsys) -> tuple:
    code = doctor.run()
    return code, capsys.readouterr().out


def test_with_the_mirror_all_is_well(mirror, capsys):
    code, out = report(capsys)
    assert code == 0, out
    assert "checksums OK" in out and "problem:" not in out


def test_a_corrupt_mirror_file_is_named(mirror, tmp_path, monkeypatch, capsys):
    copy = tmp_path / "data"
    shutil.copytree(mirror, copy)
    with open(copy / "sst2" / "dev.tsv", "ab") as f:
        f.write(b"x")
    monkeypatch.setenv(data.MIRROR_ENV, str(copy))
    code, out = report(capsys)
    assert code == 1
    assert [line for line in out.splitlines() if line.startswith("problem:")] == [
        f"problem: {copy / 'sst2' / 'dev.tsv'} does not match its sha256 (corrupt, or another version). "
        "fix: replace it with the original sst2/dev.tsv from the course data."]


def test_no_mirror_is_only_a_note_and_checkpoints_are_listed(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    (tmp_path / "cache" / "checkpoints" / "bert-cpu-0123abcd").mkdir(parents=True)
    code, out = report(capsys)
    assert code == 0, out
    assert f"note: {data.MIRROR_ENV} is not set" in out
    assert "course checkpoints: bert-cpu-0123abcd" in out


def test_a_bad_profile_is_a_problem(monkeypatch, capsys):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.setenv("COURSE_PROFILE", "bogus")
    code, out = report(capsys)
    assert code == 1
    assert "problem: COURSE_PROFILE='bogus' is not a profile" in out


def test_a_version_mismatch_names_the_package(monkeypatch, capsys):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    real = doctor.installed_version
    monkeypatch.setattr(doctor, "installed_version", lambda name: "0.0.1" if name == "numpy" else real(name))
    code, out = report(capsys)
    assert code == 1
    assert "problem: numpy 0.0.1 is installed, requirements.txt pins" in out


def test_pins_are_read_and_local_labels_ignored(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pins\ntorch==2.13.0\nsomething>=1\n-e .\nnumpy == 2.4.6  # note\n")
    assert doctor.pinned_versions(requirements) == {"torch": "2.13.0", "numpy": "2.4.6"}
    monkeypatch.setattr(doctor, "installed_version", lambda name: "2.13.0+cu128")
    assert doctor.version_mismatch("torch", "2.13.0") is None
    assert doctor.version_mismatch("torch", "2.12.0") == "2.13.0+cu128 is installed"
    monkeypatch.setattr(doctor, "installed_version", lambda name: None)
    assert doctor.version_mismatch("torch", "2.13.0") == "is not installed"


def test_a_gpu_is_described_with_the_figures_the_costs_use(monkeypatch, capsys):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    fake_gpu(monkeypatch, "NVIDIA H100 80GB HBM3", capability=(9, 0))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(costs, "_import_nvml", lambda: None)
    code, out = report(capsys)
    assert code == 0, out
    assert ("CUDA: NVIDIA H100 80GB HBM3 (compute capability 9.0), native bf16: yes; peak 989 TFLOP/s bf16, "
            "494 TFLOP/s fp32/TF32 (datasheet table); board power 700 W (datasheet table)") in out
    assert "runs train on cpu unless told otherwise (cpu profile" in out  # the default profile keeps the CPU
    assert "CPU peak for MFU: 60 GFLOP/s" in out
    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    code, out = report(capsys)
    assert "runs train on cuda unless told otherwise (gpu profile" in out
    assert "energy: estimated: board power 700 W" in out and "nvidia-ml-py" in out
    monkeypatch.setenv("COURSE_GPU_PEAK_TFLOPS", "fast")
    code, out = report(capsys)
    assert code == 1 and "problem: COURSE_GPU_PEAK_TFLOPS='fast' is not a positive number" in out
