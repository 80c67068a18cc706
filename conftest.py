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
