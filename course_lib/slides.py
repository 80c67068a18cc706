"""Lecture decks: one reveal.js deck per notebook, built from the notebook's cells marked for slides.

A deck is generated, never edited, so it cannot drift from its notebook. Which cells go in is the
notebook's own metadata, the ``slideshow.slide_type`` that JupyterLab's property inspector sets and
RISE presents live (slides/README.md has the convention): ``slide``, ``subslide``, ``fragment``,
``-`` (continue the slide above) and ``notes`` (speaker notes) are in the deck; a cell without a slide
type, or ``skip``, stays in the notebook only. Tags ``remove-input`` and ``remove-output`` show a cell's
output or code alone. A markdown cell can keep its explanation off the slide: what follows a line
``<!-- notes -->`` goes to the slide's speaker notes, up to a line ``<!-- slide -->`` (both are HTML
comments, so the notebook reads as before).

A slide is 1280 x 720 and never scrolls: what does not fit is a defect of the marks, which
tests/test_slides.py finds (it opens every slide in Chromium). Only code and outputs too wide for the slide
are set smaller, down to a floor, so a wide table stays whole.

The decks work offline: reveal.js and MathJax are copied next to them from pinned pip packages
(sphinx-revealjs and jupyter-server-mathjax, found through their metadata, never imported), and the
template below loads nothing else: nbconvert's own reveal template fetches reveal.js, RequireJS, jQuery
and Mermaid from CDNs.
"""
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

import nbformat
from jinja2 import DictLoader
from nbconvert import SlidesExporter
from nbconvert.preprocessors import TagRemovePreprocessor

from .errors import CourseError

IN_DECK = {"slide", "subslide", "fragment", "-", "notes"}
ASSETS = {"reveal.js": ("sphinx-revealjs", "sphinx_revealjs/_static/revealjs"),
          "mathjax": ("jupyter-server-mathjax", "jupyter_server_mathjax/static")}
# Each notebook's RISE settings (notebook metadata "rise", which jupyterlab-rise reads when presenting live):
# RISE's default theme ("simple") fetches its fonts from Google, which fails offline and leaves console
# errors; "white" (the decks' theme too) uses fonts reveal.js ships. RISE shows the cells without a slide
# type on the slide above, so slides run long: they scroll.
RISE = {"theme": "white", "scroll": True}
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"

# nbconvert's reveal template, minus everything it would fetch from the network (jQuery, RequireJS,
# Mermaid, widget managers); reveal.js and its notes plugin are plain local scripts.
TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js %}{% endblock html_head_js %}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block html_head_js_mathjax %}
<script type="text/x-mathjax-config">
// jupyter-server-mathjax ships the STIX web fonts, not MathJax's TeX fonts
MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], webFont: "STIX-Web", imageFont: null}});
</script>
{{ super() }}
{% endblock html_head_js_mathjax %}
{% block html_head_css %}
<style>
/* a slide is 1280 x 720 (Reveal.initialize below) and never scrolls: tests/test_slides.py checks that it fits */
.reveal { font-size: 30px; }
.reveal .slides > section, .reveal .slides > section > section { height: 100%; overflow: hidden; }
.reveal .slides { text-align: left; }
.reveal .slides h1, .reveal .slides h2, .reveal .slides h3 { text-transform: none; margin-bottom: 0.4em; }
.reveal h1 { font-size: 1.7em; } .reveal h2 { font-size: 1.35em; } .reveal h3 { font-size: 1.1em; }
.reveal ul, .reveal ol { margin-left: 1em; }
.reveal pre { width: 100%; box-sizing: border-box; margin: 0.2em 0; box-shadow: none; font-size: 17px; line-height: 1.25; }
.reveal table { font-size: 20px; }
.reveal pre, .reveal pre code { white-space: pre; }
/* a plot fills the slide's height that a heading leaves, enlarged if need be, never distorted */
.jp-RenderedImage img { height: 560px; width: auto; max-width: 100%; object-fit: contain; object-position: left; }
.jp-Cell { margin: 0; padding: 0; }
</style>
{% endblock html_head_css %}
{% block footer_js %}
<script src="reveal.js/dist/reveal.js"></script>
<script src="reveal.js/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({controls: true, progress: true, hash: true, slideNumber: "c/t", transition: "none",
                   width: 1280, height: 720, margin: 0.04, center: false, plugins: [RevealNotes]});
// Code and printed tables wider than the slide are set smaller until they fit, down to 60% of their size:
// narrower than that is unreadable from the back of a room, and the test reports the slide instead.
function fitWide(slide) {
  for (const block of slide.querySelectorAll("pre, table")) {
    const size = parseFloat(getComputedStyle(block).fontSize);
    for (let scale = 0.95; block.scrollWidth > block.clientWidth + 1 && scale >= 0.6; scale -= 0.05) {
      block.style.fontSize = (size * scale) + "px";
    }
  }
}
// A plot is drawn as tall as a slide allows (560 px) and lowered, to no less than 320 px, where the text and
// output above or below it would push the slide past its bottom edge.
function fitTall(slide) {
  const images = Array.from(slide.querySelectorAll(".jp-RenderedImage img"));
  for (let height = 550; slide.scrollHeight > slide.clientHeight + 1 && height >= 320; height -= 10) {
    images.forEach(img => { img.style.height = height + "px"; });
  }
}
function shown(slide) {
  fitWide(slide);
  fitTall(slide);
  slide.querySelectorAll("img").forEach(img => { if (!img.complete) img.addEventListener("load", () => fitTall(slide)); });
  if (window.MathJax && MathJax.Hub) { MathJax.Hub.Rerender(slide); }
}
Reveal.on("ready", function (event) { shown(event.currentSlide); });
Reveal.on("slidechanged", function (event) { shown(event.currentSlide); });
</script>
{% endblock footer_js %}
"""


def asset_dir(distribution: str, inside: str) -> Path:
    """Where a pinned package installed the files a deck needs (found by metadata, without importing it)."""
    try:
        path = Path(metadata.distribution(distribution).locate_file(inside))
    except metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_dir():
        raise CourseError(f"{distribution} is not installed, and the decks take their scripts from it; "
                          "run `.venv/bin/pip install -r requirements.txt`")
    return path


def copy_assets(out_dir: Path) -> None:
    """reveal.js and MathJax next to the decks, so that a deck opened from the file system needs no network."""
    for name, (distribution, inside) in ASSETS.items():
        shutil.copytree(asset_dir(distribution, inside), out_dir / name, dirs_exist_ok=True)


def slide_type(cell):
    return cell.metadata.get("slideshow", {}).get("slide_type")


def in_deck(cell) -> bool:
    return slide_type(cell) in IN_DECK


NOTES = "<!-- notes -->"


def split_notes(cell) -> list:
    """A markdown cell as its slide part and, after it, a ``notes`` cell with what its markers keep off the slide."""
    if cell.cell_type != "markdown" or NOTES not in cell.source or slide_type(cell) == "notes":
        return [cell]
    first, *rest = re.split(r"^<!-- (notes|slide) -->[ \t]*$", cell.source, flags=re.M)
    parts = {"slide": [first], "notes": []}
    for marker, text in zip(rest[::2], rest[1::2]):
        parts[marker].append(text)
    shown, notes = ("\n\n".join(t.strip() for t in parts[kind] if t.strip()) for kind in ("slide", "notes"))
    slide = nbformat.from_dict(cell)
    slide.source = shown
    note = nbformat.v4.new_markdown_cell(notes, metadata={"slideshow": {"slide_type": "notes"}})
    return [slide, note]


def deck_notebook(nb):
    """The notebook's slide cells, split from their notes; a notebook nobody has marked yet gets its title cell
    as a one-slide deck."""
    cells = [part for cell in nb.cells if in_deck(cell) for part in split_notes(cell)]
    if not cells:
        title = nbformat.from_dict(nb.cells[0])
        title.metadata["slideshow"] = {"slide_type": "slide"}
        cells = [title]
    nb = nbformat.from_dict(nb)
    nb.cells = cells
    return nb


def exporter() -> SlidesExporter:
    slides = SlidesExporter(extra_loaders=[DictLoader({"course_slides.html.j2": TEMPLATE})],
                            template_file="course_slides.html.j2", exclude_input_prompt=True,
                            exclude_output_prompt=True, mathjax_url=MATHJAX_URL,
                            reveal_url_prefix="reveal.js", reveal_theme="white")
    slides.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"remove-input"},
                                                       remove_all_outputs_tags={"remove-output"}), enabled=True)
    return slides


def build_deck(notebook: Path, out_dir: Path) -> Path:
    """Write ``out_dir/<notebook name>.slides.html``; the assets must be in ``out_dir`` (see ``build``)."""
    nb = nbformat.read(notebook, as_version=4)
    if not any(in_deck(cell) for cell in nb.cells):
        print(f"{notebook.name}: no cells marked for slides yet (slides/README.md says how); "
              "its deck is the title cell alone", file=sys.stderr)
    html, _ = exporter().from_notebook_node(deck_notebook(nb), resources={"metadata": {"name": notebook.stem}})
    target = out_dir / f"{notebook.stem}.slides.html"
    target.write_text(html, encoding="utf-8")
    return target


def slide_count(notebook: Path) -> int:
    """How many slides the deck of ``notebook`` has, as reveal.js counts them (its first cell always opens one)."""
    cells = deck_notebook(nbformat.read(notebook, as_version=4)).cells
    return 1 + sum(slide_type(cell) in {"slide", "subslide"} for cell in cells[1:])


def build(notebooks_dir: Path = Path("notebooks"), out_dir: Path = Path("slides/build")) -> list:
    """Every notebook's deck and an index page linking them; returns the deck paths."""
    notebooks = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise CourseError(f"{notebooks_dir} holds no numbered notebooks (NN_name.ipynb); give the course's "
                          "notebooks/ folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_assets(out_dir)
    decks = [build_deck(notebook, out_dir) for notebook in notebooks]
    links = "\n".join(f'<li><a href="{deck.name}">{deck.name.removesuffix(".slides.html")}</a></li>'
                      for deck in decks)
    (out_dir / "index.html").write_text(f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Lecture decks'
                                        f'</title></head>\n<body><h1>Lecture decks</h1>\n<ul>\n{links}\n</ul>\n'
                                        "</body></html>\n", encoding="utf-8")
    return decks
