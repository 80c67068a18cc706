"""The Korean edition: each notebook's markdown cells in Korean, from one translation file per notebook.

The English notebooks stay the source of the code, the outputs and the cell ids. A translation file
(``translations/ko/NN_name.md``) holds one block per markdown cell, headed by the cell's id and the hash of
the English text it translates::

    <!-- cell 4f2a1b3c en 0123456789ab -->
    ## 7. 첫 번째 전이학습, 단어 벡터
    ...

A translator edits plain Markdown; when an English cell changes, its hash no longer matches and the block
is stale (``stale``), so a translation cannot silently fall behind the text it translates.
"""
import hashlib
import re
from pathlib import Path

import nbformat

from .errors import CourseError

TRANSLATIONS = Path("translations")
HEADER = re.compile(r"^<!-- cell (\S+) en ([0-9a-f]{12}) -->$", re.M)


def english_hash(source: str) -> str:
    """The first 12 hex digits of the SHA-256 of a cell's English text: enough to tell any edit."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def markdown_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "markdown"]


def translation_path(notebook: Path, lang: str = "ko", root: Path = TRANSLATIONS) -> Path:
    return root / lang / f"{notebook.stem}.md"


def read_translation(path: Path) -> dict:
    """{cell id: (English hash, translated text)} from a translation file."""
    text = path.read_text(encoding="utf-8")
    parts = HEADER.split(text)
    return {cell_id: (digest, body.strip("\n")) for cell_id, digest, body in zip(parts[1::3], parts[2::3], parts[3::3])}


def format_translation(blocks: list) -> str:
    """A translation file from ``[(cell id, English hash, text)]``, in the notebook's order."""
    return "".join(f"<!-- cell {cell_id} en {digest} -->\n{text.strip()}\n\n" for cell_id, digest, text in blocks)


def template(notebook: Path) -> str:
    """A translation file whose blocks still hold the English text: the translator's starting point."""
    nb = nbformat.read(notebook, as_version=4)
    return format_translation([(cell.id, english_hash(cell.source), cell.source) for cell in markdown_cells(nb)])


def stale(notebook: Path, lang: str = "ko", root: Path = TRANSLATIONS) -> list:
    """``[(cell id, why)]`` for every markdown cell whose translation is missing or made from other English text."""
    nb = nbformat.read(notebook, as_version=4)
    path = translation_path(notebook, lang, root)
    done = read_translation(path) if path.is_file() else {}
    found = []
    for cell in markdown_cells(nb):
        if cell.id not in done:
            found.append((cell.id, "no translation"))
        elif done[cell.id][0] != english_hash(cell.source):
            found.append((cell.id, "the English text changed since it was translated"))
    return found


# What a translation must keep exactly as the English has it: display and inline math, inline code, link
# targets, the slide markers, and every number (a figure updated in English cannot keep an old value).
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)  # a code block: its comments and diagrams may be translated
CODE = re.compile(r"`[^`]+`")  # a code span may run over a line break
LINK = re.compile(r"\]\(([^)\s]+)\)")
MARKER = re.compile(r"^<!-- (?:notes|slide) -->[ \t]*$", re.M)
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")


def kept(text: str) -> dict:
    """The parts of a cell a translation must keep, each as a sorted list: math, code, links, markers, numbers
    (spans compared with their whitespace normalised, so that a translation may wrap its lines elsewhere)."""
    text = FENCE.sub(lambda block: block.group(1), text)  # its numbers count, its lines are not spans
    plain = CODE.sub(" ", MATH.sub(" ", text))
    spans = lambda pattern, source: sorted(" ".join(span.split()) for span in pattern.findall(source))  # re-wrapped lines
    return {"math": spans(MATH, text), "code": spans(CODE, MATH.sub(" ", text)),
            "links": sorted(LINK.findall(plain)), "markers": sorted(MARKER.findall(text)),
            "numbers": sorted(NUMBER.findall(LINK.sub("]()", plain)))}


HANGUL = re.compile(r"[\uac00-\ud7a3]")
LETTER = re.compile(r"[^\W\d_]")


def hangul_share(text: str) -> float:
    """Hangul syllables among the letters outside math, code and links: how Korean a translated cell reads."""
    plain = LINK.sub("]()", CODE.sub(" ", MATH.sub(" ", text)))
    letters = LETTER.findall(plain)
    return len(HANGUL.findall(plain)) / len(letters) if letters else 1.0


def edition_dir(lang: str) -> Path:
    """Where a language's notebooks go: beside ``notebooks/``, so that a notebook's relative paths
    (``../benchmarks``) lead to the same files from either edition."""
    return Path(f"notebooks_{lang}")


def translated(notebook: Path, lang: str = "ko", root: Path = TRANSLATIONS):
    """The notebook with every markdown cell in ``lang``; code cells, outputs and cell ids as in English.

    Raises ``CourseError`` naming the cells whose translation is missing or stale: a half-translated
    edition would mix languages without saying so.
    """
    behind = stale(notebook, lang, root)
    if behind:
        listed = ", ".join(cell_id for cell_id, _ in behind[:8]) + (" ..." if len(behind) > 8 else "")
        raise CourseError(f"{notebook.name}: {len(behind)} markdown cells have no current {lang} translation "
                          f"({listed}); `python -m course_lib translate --lang {lang} --stale` lists them")
    nb = nbformat.read(notebook, as_version=4)
    done = read_translation(translation_path(notebook, lang, root))
    for cell in markdown_cells(nb):
        cell.source = done[cell.id][1]
    nb.metadata["language"] = lang
    return nb


def build(lang: str = "ko", notebooks_dir: Path = Path("notebooks"), root: Path = TRANSLATIONS) -> list:
    """Write the ``lang`` edition of every notebook that has a translation file; returns the paths written."""
    out = edition_dir(lang)
    written = []
    for notebook in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        if translation_path(notebook, lang, root).is_file():
            out.mkdir(exist_ok=True)
            nbformat.write(translated(notebook, lang, root), out / notebook.name)
            written.append(out / notebook.name)
    return written


def stale_report(lang: str = "ko", notebooks_dir: Path = Path("notebooks"), root: Path = TRANSLATIONS) -> str:
    """Every markdown cell whose translation is missing or stale, with its current English text to translate."""
    lines = []
    for notebook in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        nb = {cell.id: cell for cell in nbformat.read(notebook, as_version=4).cells}
        for cell_id, why in stale(notebook, lang, root):
            lines += [f"{translation_path(notebook, lang, root)}: cell {cell_id}: {why}; its block header is",
                      f"<!-- cell {cell_id} en {english_hash(nb[cell_id].source)} -->", "and its English text:",
                      nb[cell_id].source, ""]
    return "\n".join(lines) or f"every {lang} translation is current"
