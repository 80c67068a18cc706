"""The course's few plot types, so every notebook labels its axes the same way.

Each function draws on a given (or new) matplotlib ``Axes``, returns it, and returns or prints
nothing else: the numbers behind a plot are printed by the notebook, where nbval can compare them.
"""
import matplotlib.pyplot as plt
import numpy as np


def _axes(ax, figsize=(6, 4)):
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Project rows onto their top two principal components (signs fixed, so runs agree)."""
    centred = vectors - vectors.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2] * np.sign(vt[:2, np.abs(vt[:2]).argmax(1)].diagonal())[:, None]
    return centred @ components.T


def projection(points: np.ndarray, labels: list, groups: list | None = None, ax=None, title: str = ""):
    """A labelled 2-D scatter of word vectors, coloured by ``groups`` if given."""
    ax = _axes(ax, (7, 5))
    groups = groups or [""] * len(labels)
    for g in dict.fromkeys(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        ax.scatter(points[idx, 0], points[idx, 1], label=g or None, s=25)
    for (x, y), label in zip(points, labels):
        ax.annotate(label, (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="principal component 1", ylabel="principal component 2", title=title)
    if any(groups):
        ax.legend(fontsize=8)
    return ax


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
    for name, level in (hlines or {}).items():
        ax.axhline(level, linestyle="--", color="grey", linewidth=1)
        ax.annotate(name, (ax.get_xlim()[0], level), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax
