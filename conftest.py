"""pytest set-up shared by the unit tests and nbval's notebook runs."""
import nbval.plugin

# Library warnings and progress bars go to stderr and vary between runs; results go to stdout.
_nbval_init = nbval.plugin.IPyNbFile.__init__


def _init_without_stderr(self, *args, **kwargs):
    _nbval_init(self, *args, **kwargs)
    self.skip_compare = self.skip_compare + ("stderr",)


nbval.plugin.IPyNbFile.__init__ = _init_without_stderr
