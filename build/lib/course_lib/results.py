"""Benchmark results as JSON lines: one finished run per line, appended as soon as it ends.

Two processes can share a file (each appends whole lines), and an interrupted benchmark resumes by
skipping the runs the file already holds.
"""
import json
from pathlib import Path

from .errors import ConfigError


def read_results(path) -> list:
    """The rows of a results file (none if it does not exist yet)."""
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def append_result(path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def add_benchmark_options(parser, results_path, threads: int = 2) -> None:
    """The options every resumable benchmark shares: which share of the grid, threads, report only, results file."""
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th job of the grid, starting at the i-th")
    parser.add_argument("--threads", type=int, default=threads, help="CPU threads (1 per process when running shards)")
    parser.add_argument("--report", action="store_true", help="print the tables from the results file; run nothing")
    parser.add_argument("--results", type=Path, default=results_path)


def my_jobs(grid: list, shard: str, done) -> list:
    """This process's share of ``grid`` ("i/n": every n-th job from the i-th), less the jobs already done.

    Shards split the whole grid, not what is left of it, so processes started at different times
    never run the same job.
    """
    try:
        i, n = map(int, shard.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like 0/2, not {shard!r}") from None
    if not 0 <= i < n:
        raise ConfigError(f"--shard {shard}: the first number must be from 0 to {n - 1}")
    return [job for job in list(dict.fromkeys(grid))[i::n] if job not in done]


def run_grid(path, grid: list, shard: str, key, run, describe) -> None:
    """Run this process's share of ``grid`` that ``path`` lacks, appending each job's row as soon as it ends.

    ``key(row)`` is the job a finished row came from (how a rerun knows what to skip); ``run(*job)`` does
    one job and returns its row; ``describe(row, *job)`` is the line printed after it, or None for a job
    that says what it did itself. Set-up that only some jobs need belongs inside ``run``, so that a
    process with none of them left never does it.
    """
    done = {key(row) for row in read_results(path)}
    for job in my_jobs(grid, shard, done):
        row = run(*job)
        append_result(path, row)
        line = describe(row, *job)
        if line is not None:
            print(line, flush=True)
