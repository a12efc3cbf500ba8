"""The pictures of an evaluation: learning curves, every snapshot's accuracy, the normalised confusion matrix."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ferlib.figures import save_png  # noqa: E402
from train.caffe_log import CaffeLog  # noqa: E402


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of each value and the window - 1 before it; fewer at the start, so that a curve
    smoothed this way still begins where its run began."""
    sums = np.cumsum(np.insert(np.asarray(values, dtype=float), 0, 0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def confusion_png(counts: np.ndarray, labels: tuple[str, ...], title: str, path: Path) -> None:
    """Rows normalised to recall; each cell shows its share and its count."""
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(7, 6))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, col), share in np.ndenumerate(shares):
        axes.text(
            col,
            row,
            f"{share:.2f}\n{counts[row, col]}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if share > 0.5 else "black",
        )
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    save_png(figure, path)


def curves_png(log: CaffeLog, epoch_iters: int, title: str, path: Path) -> None:
    """Train loss, validation loss and accuracy, learning rate, against iteration and epoch."""
    figure, (loss_axes, acc_axes, lr_axes) = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    if trained := log.losses():
        iterations, losses = np.array(trained).T
        loss_axes.plot(iterations, losses, lw=0.6, alpha=0.5, label="train loss")
        window = max(1, len(losses) // 50)
        loss_axes.plot(iterations, running_mean(losses, window), lw=1.5, label=f"train loss (mean of {window})")
    tests = log.test_passes()
    if tests:
        test_iterations = [i for i, _ in tests]
        if all("loss" in out for _, out in tests):
            loss_axes.plot(test_iterations, [out["loss"] for _, out in tests], "o-", ms=2, label="val loss")
        if all("accuracy" in out for _, out in tests):
            accuracies = [out["accuracy"] for _, out in tests]
            acc_axes.plot(test_iterations, accuracies, "o-", ms=2, color="C2", label="val accuracy (PublicTest)")
            best = int(np.argmax(accuracies))
            acc_axes.annotate(
                f"best {accuracies[best]:.3f}",
                (test_iterations[best], accuracies[best]),
                textcoords="offset points",
                xytext=(0, 8),
                ha="center",
                fontsize=8,
            )
    if log.lr:
        lr_iterations, rates = np.array(log.lr).T
        lr_axes.plot(lr_iterations, rates, color="C3")
        lr_axes.set_yscale("log")
    loss_axes.set_ylabel("loss")
    acc_axes.set_ylabel("accuracy")
    lr_axes.set_ylabel("learning rate")
    lr_axes.set_xlabel("iteration")
    for axes in (loss_axes, acc_axes):
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    lr_axes.grid(alpha=0.3)
    epoch_axes = loss_axes.secondary_xaxis("top", functions=(lambda i: i / epoch_iters, lambda e: e * epoch_iters))
    epoch_axes.set_xlabel("epoch")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save_png(figure, path)


def snapshots_png(candidates: list[dict], chosen: dict, peak: dict, title: str, path: Path) -> None:
    """PublicTest and PrivateTest accuracy of every snapshot: the PublicTest-selected one
    against the PrivateTest peak that a "highest test accuracy" would quote."""
    iterations = [c["iteration"] for c in candidates]
    figure, axes = plt.subplots(figsize=(8, 4))
    for key, label, color in (("val_accuracy", "PublicTest", "C2"), ("test_accuracy", "PrivateTest", "C0")):
        axes.plot(iterations, [c[key] for c in candidates], "o-", ms=2, color=color, label=label)
    axes.axvline(chosen["iteration"], color="gray", lw=0.8, ls="--")
    axes.plot(
        chosen["iteration"],
        chosen["test_accuracy"],
        "s",
        ms=7,
        mfc="none",
        color="k",
        label=f"selected on PublicTest: PrivateTest {chosen['test_accuracy']:.3f}",
    )
    axes.plot(
        peak["iteration"],
        peak["test_accuracy"],
        "*",
        ms=10,
        color="C3",
        label=f"PrivateTest peak {peak['test_accuracy']:.3f}",
    )
    axes.set_xlabel("iteration")
    axes.set_ylabel("accuracy")
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(alpha=0.3)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    save_png(figure, path)


def loss_curves_png(series: dict[str, list[tuple[int, float]]], title: str, path: Path) -> None:
    """Training loss against iteration for several runs, smoothed over 10 log points."""
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for name, points in series.items():
        iterations, losses = np.array(points).T
        axes.plot(iterations, running_mean(losses, 10), label=name, linewidth=1.2)
    axes.set_xlabel("iteration")
    axes.set_ylabel("training loss (mean of 10 log points)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    save_png(figure, path)
