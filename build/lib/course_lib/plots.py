"""The course's few plot types, so every notebook labels its axes the same way.

Each function draws on a given (or new) matplotlib ``Axes``, returns it, and returns or prints
nothing else: the numbers behind a plot are printed by the notebook, where nbval can compare them.
"""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.transforms import Bbox


def _axes(ax, figsize=(6, 4)):
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Project rows onto their top two principal components (signs fixed, so runs agree)."""
    centred = vectors - vectors.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2] * np.sign(vt[:2, np.abs(vt[:2]).argmax(1)].diagonal())[:, None]
    return centred @ components.T


def projection(points: np.ndarray, labels: list, groups: list | None = None, ax=None, title: str = "",
               palette: dict | None = None):
    """A labelled 2-D scatter of word vectors, coloured by ``groups`` if given.

    ``palette`` (group -> colour) keeps colours the same across several plots of the same groups.
    """
    ax = _axes(ax, (7, 5))
    groups = groups or [""] * len(labels)
    palette = palette or {g: f"C{i}" for i, g in enumerate(dict.fromkeys(groups))}
    for g in dict.fromkeys(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        ax.scatter(points[idx, 0], points[idx, 1], label=g or None, s=25, color=palette[g])
    ax.set(xlabel="principal component 1", ylabel="principal component 2", title=title)
    if any(groups):
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: the labels need the room
    place_labels(ax, points, labels, colors=[palette[g] for g in groups])
    return ax


# Where a label may go, in points from its marker: close first, then further out in 16 directions.
_ANGLES = np.deg2rad([45, -45, 135, -135, 0, 180, 90, -90, 22.5, -22.5, 157.5, -157.5, 67.5, -67.5, 112.5, -112.5])
_CANDIDATES = [(round(r * np.cos(a), 1), round(r * np.sin(a), 1)) for r in (6, 11, 17, 25, 34, 44) for a in _ANGLES]


def place_labels(ax, points, labels, fontsize: int = 8, colors=None):
    """Label each point at the nearest spot where its text overlaps no other label, marker or the legend.

    A greedy search (no extra dependency such as adjustText): labels in crowded places go first; each
    tries offsets of growing distance in 16 directions and keeps the first free one (or the least
    covered); a label moved away from its point gets a thin leader line. The layout is deterministic,
    so the same points always give the same figure.
    """
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    pixels = ax.transData.transform(np.asarray(points))
    taken = [Bbox.from_bounds(x - 5, y - 5, 10, 10) for x, y in pixels]  # the markers
    legend = ax.get_legend()
    if legend is not None:
        taken.append(legend.get_window_extent(renderer))
    colors = colors if colors is not None else ["black"] * len(labels)
    crowding = (np.linalg.norm(pixels[:, None] - pixels[None], axis=-1) < 40).sum(1)
    for i in sorted(range(len(labels)), key=lambda i: (-crowding[i], i)):
        (x, y), label, color = np.asarray(points)[i], labels[i], colors[i]
        best, best_overlap = None, None
        for dx, dy in _CANDIDATES:
            text = ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                               color=color, ha="left" if dx > 1 else "right" if dx < -1 else "center",
                               va="bottom" if dy > 1 else "top" if dy < -1 else "center")
            box = text.get_window_extent(renderer).expanded(1.1, 1.2)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            overlap = sum(_overlap_area(box, other) for other in taken) + (0 if inside else 1e6)
            if best is None or overlap < best_overlap:
                if best is not None:
                    best[0].remove()
                best, best_overlap = (text, box, (dx, dy)), overlap
            else:
                text.remove()
            if overlap == 0:
                break
        text, box, (dx, dy) = best
        if np.hypot(dx, dy) > 7:  # moved away from its marker: a leader line shows whose label it is
            text.remove()
            ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                        color=color, ha=text.get_ha(), va=text.get_va(),
                        arrowprops=dict(arrowstyle="-", color=color, linewidth=0.6, shrinkA=0, shrinkB=2))
        taken.append(box)
    return ax


def _overlap_area(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, width) * max(0.0, height)


def heatmap(matrix, xlabels: list, ylabels: list, ax=None, title: str = "", xlabel: str = "key (attended to)",
            ylabel: str = "query (attending)"):
    """A matrix as colours with token labels: attention weights, similarity tables."""
    ax = _axes(ax, (5, 4.5))
    image = ax.imshow(np.asarray(matrix), cmap="viridis", vmin=0)
    ax.set_xticks(range(len(xlabels)), xlabels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(ylabels)), ylabels, fontsize=8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    plt.colorbar(image, ax=ax, fraction=0.046)
    return ax


def curves(series: dict, xlabel: str, ylabel: str, ax=None, title: str = "", logx: bool = False,
           logy: bool = False, hlines: dict | None = None):
    """Several named (x, y) lines — loss curves, accuracy vs budget — plus optional reference levels."""
    ax = _axes(ax)
    for name, (x, y) in series.items():
        ax.plot(x, y, marker="o" if len(x) < 15 else None, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    for name, level in (hlines or {}).items():  # after the scales: the label sits at the left edge either way
        ax.axhline(level, linestyle="--", color="grey", linewidth=1)
        ax.annotate(name, (0, level), xycoords=("axes fraction", "data"), fontsize=8, xytext=(3, 3),
                    textcoords="offset points")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax
