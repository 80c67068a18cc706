"""Hangul renders in every plot once ``course_lib.setup()`` has run, and English text keeps its font."""
import warnings

import matplotlib
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont

from course_lib import runtime

KOREAN = "혐오 · 공격 · 없음 (hate, offensive, none)"


def glyph_warnings(text: str) -> list:
    """The missing-glyph warnings matplotlib gives while drawing ``text`` in a title, tick labels and a legend."""
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([0, 1], label=text)
    ax.set(title=text, xlabel=text, xticks=[0, 1], xticklabels=[text, text])
    ax.legend()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    return [str(w.message) for w in caught if "missing from font" in str(w.message) or "Glyph" in str(w.message)]


@pytest.fixture
def rc():
    with matplotlib.rc_context():
        yield matplotlib.rcParams


def test_without_the_setup_hangul_is_missing(rc):
    """The check below can fail: the default font alone has no Hangul."""
    rc["font.family"] = ["sans-serif"]
    assert any("missing from font" in message for message in glyph_warnings(KOREAN))


def test_setup_draws_hangul_without_missing_glyphs(rc):
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        runtime.setup(threads=threads)  # the one call at the top of every notebook
    finally:
        torch.use_deterministic_algorithms(deterministic)
    assert glyph_warnings(KOREAN) == []


def test_english_text_keeps_the_default_font(rc):
    runtime.hangul_in_plots()
    assert rc["font.family"][0] == "sans-serif"
    assert findfont(FontProperties()).endswith("DejaVuSans.ttf")
    assert glyph_warnings("accuracy (%) against labels") == []
