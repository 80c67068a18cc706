"""The library's core never depends on its lessons: a learner can read the trainer without the course around it."""
import ast
from pathlib import Path

import course_lib

CORE = {"runtime", "errors", "data", "tokenization", "models", "optim", "costs", "hardware", "trainer", "checkpoints",
        "distributed"}
PACKAGE = Path(course_lib.__file__).parent


def course_imports(module: str) -> set:
    """The course_lib modules that ``module`` imports (``from . import x``, ``from .x import y``)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
            found.add(node.module.split(".")[1] if "." in node.module else node.names[0].name)
    return found


def test_core_modules_import_only_core_modules():
    for module in sorted(CORE):
        lessons = course_imports(module) - CORE
        assert not lessons, f"core module {module} imports lesson modules {sorted(lessons)}"


def test_the_check_sees_imports():
    assert course_imports("trainer") >= {"checkpoints", "costs", "hardware", "optim"}
    assert "costs" in course_imports("objectives")
