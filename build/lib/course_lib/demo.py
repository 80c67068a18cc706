"""The course's main job in five minutes: does pretraining pay off when labels are scarce?

Fine-tune the real pretrained MiniLM and the same architecture with random weights on the
same small labelled sample of SST-2, score both on held-out sentences, print a table, save a plot.
"""
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import data, models  # noqa: E402
from .finetune import EPOCHS, MINILM, finetune, labels_for, learning_rate, load_classifier, recipe  # noqa: E402

ARMS = {"pretrained MiniLM": "pretrained", "MiniLM from scratch": "scratch"}  # name -> start (finetune.STARTS)


def run(labels: int = 500, epochs: int = EPOCHS, seed: int = 0, out_dir="runs/demo", progress: bool = True,
        **overrides) -> list:
    """Run both arms by ``finetune.recipe``; return one result dict per arm and save ``demo.png`` in ``out_dir``.

    ``overrides`` are ``TrainConfig`` fields, e.g. ``max_steps`` for a quick look.
    """
    sst2 = data.load("sst2")
    print(f"SST-2 source: {sst2.source}")
    if sst2.source == data.SAMPLE_SOURCE:
        print("note: numbers from a 200-sentence sample are not comparable with benchmarks/RESULTS.md "
              f"(full SST-2); set {data.MIRROR_ENV} or go online for those")
    train, held_out = sst2["train"].take(labels_for(labels, len(sst2["train"])), seed=seed), sst2["dev"]
    print(f"{len(train)} labelled training sentences, {len(held_out)} held-out sentences\n")
    results = []
    for name, start_from in ARMS.items():
        start = time.perf_counter()
        model, tokenizer = load_classifier(MINILM, start=start_from)
        config = recipe(len(train), learning_rate(MINILM, start_from), seed, epochs=epochs, progress=progress,
                        **overrides)
        trainer = finetune(model, tokenizer, train, held_out, config)
        results.append({"model": name, "params": models.count_parameters(model),
                        "accuracy": trainer.history["eval"][-1]["accuracy"], "history": trainer.history["train"],
                        "cost": trainer.cost, "seconds": time.perf_counter() - start})
    print(table(results))
    path = plot(results, Path(out_dir))
    print(f"\nplot saved to {path}")
    return results


def table(results: list) -> str:
    rows = [f"{'model':<22}{'params':>8}{'held-out acc':>14}{'FLOPs':>11}{'CO2e (g)':>10}{'wall time':>11}"]
    for r in results:
        rows.append(f"{r['model']:<22}{r['params'] / 1e6:>7.1f}M{100 * r['accuracy']:>13.1f}%"
                    f"{r['cost'].flops:>11.2e}{1000 * r['cost'].co2_kg:>10.3f}{r['seconds']:>10.0f}s")
    gain = 100 * (results[0]["accuracy"] - results[1]["accuracy"])
    rows.append(f"\npretraining is worth {gain:+.1f} accuracy points at this label budget")
    return "\n".join(rows)


def plot(results: list, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(10, 4))
    for r in results:
        curves.plot([h["step"] for h in r["history"]], [h["loss"] for h in r["history"]], label=r["model"])
    curves.set(xlabel="optimizer step", ylabel="training loss", title="Fine-tuning loss")
    curves.legend()
    bars.bar([r["model"] for r in results], [100 * r["accuracy"] for r in results], color=["C0", "C1"])
    bars.axhline(50, color="gray", linestyle="--", label="chance")
    bars.set(ylabel="held-out accuracy (%)", ylim=(0, 100), title="Same architecture, same labels")
    bars.legend()
    fig.tight_layout()
    path = out_dir / "demo.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
