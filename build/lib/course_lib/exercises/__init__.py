"""Checks for the graded exercises: each says *what* is wrong, not just "failed".

A notebook's exercise cell ends with a call such as ``exercises.embeddings.check_pairs(skipgram_pairs)``.
Checks raise ``CheckFailed`` with a specific hint, or print a confirmation. In the student copy of a
notebook the solution is replaced by ``raise NotImplementedError``; ``grade`` turns that into a
friendly "not attempted yet" message.
"""


class CheckFailed(AssertionError):
    """Raised by a check with feedback a learner can act on."""


def expect(condition: bool, feedback: str) -> None:
    if not condition:
        raise CheckFailed(feedback)


def expect_number(value, what: str) -> None:
    """A learner's function must return a plain number (a bool is not one)."""
    expect(isinstance(value, (int, float)) and not isinstance(value, bool),
           f"return a number ({what}), not {type(value).__name__}")


def grade(name: str, check, *args) -> None:
    """Run ``check(*args)`` and report the outcome of exercise ``name``."""
    try:
        check(*args)
    except NotImplementedError:
        raise CheckFailed(f"{name}: not attempted yet - replace `raise NotImplementedError` with your code.") from None
    print(f"{name}: correct!")
