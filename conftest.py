"""pytest set-up shared by the unit tests and nbval's notebook runs."""
import os

import nbval.plugin

# The suite runs in two processes (pytest-xdist, one test file or notebook each), each with the thread count its
# notebook fixes. Idle OpenMP threads that spin instead of sleeping would steal the other process's core; waiting
# passively costs nothing when a process has the machine to itself. The notebooks' kernels inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Library warnings and progress bars go to stderr and vary between runs; results go to stdout.
_nbval_init = nbval.plugin.IPyNbFile.__init__


def _init_without_stderr(self, *args, **kwargs):
    _nbval_init(self, *args, **kwargs)
    self.skip_compare = self.skip_compare + ("stderr",)


nbval.plugin.IPyNbFile.__init__ = _init_without_stderr

# pytest-xdist hands out whole files (`--dist loadfile`) in collection order (`--no-loadscope-reorder`); a
# worker takes the next file only when at most two tests of its current one are left. Notebooks 06 and 05
# train the course BERT and GPT into an empty cache (the suite's longest cells: benchmarks/RESULTS.md, "Test
# suite and notebook CI times"); 07, 09 and 10 need the BERT and would wait on its lock. So each worker starts
# on a trainer, the GPT's worker goes on to notebook 11 (which trains its own checkpoint), the unit tests and
# the notebooks that need no BERT, and the notebooks that need it come last, longest first, then 12 (which needs the Korean BERT of 11).
FIRST = ("06_", "05_", "11_")
LAST = ("10_", "09_", "07_", "12_")


def _rank(item) -> tuple:
    prefix = item.path.name[:3]
    if prefix in FIRST:
        return 0, FIRST.index(prefix)
    if prefix in LAST:
        return 2, LAST.index(prefix)
    return 1, 0


def pytest_collection_modifyitems(items):
    items.sort(key=_rank)  # stable: files keep their order inside a group, cells theirs inside a file
