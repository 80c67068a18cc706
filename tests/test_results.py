"""results.run_grid: the resumable loop every benchmark script runs its grid through."""
import collections

import pytest

from course_lib import results
from course_lib.errors import ConfigError

GRID = [(arm, seed) for seed in range(3) for arm in ("a", "b")]


def key(row: dict) -> tuple:
    return row["arm"], row["seed"]


class FakeBenchmark:
    """A run function that records the jobs it was given, so a test can tell what ran and what was skipped."""

    def __init__(self):
        self.ran = []

    def run(self, arm: str, seed: int) -> dict:
        self.ran.append((arm, seed))
        return {"arm": arm, "seed": seed, "score": len(arm) + seed}


def describe(row: dict, arm: str, seed: int) -> str:
    return f"{arm} seed {seed}: {row['score']}"


def test_run_grid_appends_a_row_per_job_in_grid_order_and_prints_its_line(tmp_path, capsys):
    path, bench = tmp_path / "bench.jsonl", FakeBenchmark()
    results.run_grid(path, GRID, "0/1", key, bench.run, describe)
    assert bench.ran == GRID
    assert [key(row) for row in results.read_results(path)] == GRID
    assert capsys.readouterr().out.splitlines() == [f"{arm} seed {seed}: {len(arm) + seed}" for arm, seed in GRID]


def test_run_grid_skips_the_jobs_the_file_already_holds(tmp_path, capsys):
    path = tmp_path / "bench.jsonl"
    for row in ({"arm": "b", "seed": 0, "score": -1}, {"arm": "a", "seed": 2, "score": -1}):
        results.append_result(path, row)
    bench = FakeBenchmark()
    results.run_grid(path, GRID, "0/1", key, bench.run, describe)
    assert bench.ran == [job for job in GRID if job not in {("b", 0), ("a", 2)}]
    capsys.readouterr()

    again = FakeBenchmark()
    results.run_grid(path, GRID, "0/1", key, again.run, describe)  # an interrupted run resumed after it ended
    assert again.ran == [] and capsys.readouterr().out == ""
    assert len(results.read_results(path)) == len(GRID)


def test_two_shards_together_run_the_grid_exactly_once(tmp_path):
    path, first, second = tmp_path / "bench.jsonl", FakeBenchmark(), FakeBenchmark()
    results.run_grid(path, GRID, "0/2", key, first.run, describe)
    results.run_grid(path, GRID, "1/2", key, second.run, describe)
    assert first.ran and second.ran and not set(first.ran) & set(second.ran)
    assert collections.Counter(key(row) for row in results.read_results(path)) == collections.Counter(GRID)


def test_a_job_that_reports_itself_prints_no_line(tmp_path, capsys):
    path = tmp_path / "bench.jsonl"
    results.run_grid(path, GRID[:2], "0/1", key, FakeBenchmark().run, describe=lambda row, *job: None)
    assert capsys.readouterr().out == "" and len(results.read_results(path)) == 2


@pytest.mark.parametrize("shard", ["2/2", "1", "a/b", "-1/2"])
def test_a_malformed_shard_is_a_config_error_before_any_job_runs(tmp_path, shard):
    path, bench = tmp_path / "bench.jsonl", FakeBenchmark()
    with pytest.raises(ConfigError, match="shard"):
        results.run_grid(path, GRID, shard, key, bench.run, describe)
    assert bench.ran == [] and not path.exists()
