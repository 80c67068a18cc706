"""Benchmark results as JSON lines: one finished run per line, appended as soon as it ends.

Two processes can share a file (each appends whole lines), and an interrupted benchmark resumes by
skipping the runs the file already holds.
"""
import json
from pathlib import Path


def read_results(path) -> list:
    """The rows of a results file (none if it does not exist yet)."""
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def append_result(path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
