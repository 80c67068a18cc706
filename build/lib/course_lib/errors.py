"""The course's errors: each says what is wrong and how to fix it.

The library raises them; the command line prints their message as one line (``error: ...``)
and a notebook shows the same advice. Anything else that escapes is a bug in the course.
"""


class CourseError(Exception):
    """A problem the user can fix; the message says how."""


class DataError(CourseError):
    """Data is missing or corrupt."""


class CheckpointError(CourseError):
    """A checkpoint is missing, incomplete, corrupt, or not the kind (or run) that was asked for."""


class ConfigError(CourseError, ValueError):
    """A setting is impossible (a range, a choice, a size the data or the model cannot hold)."""
