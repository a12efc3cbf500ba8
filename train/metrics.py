"""Accuracy, confusion matrix and per-class precision / recall / F1."""

from __future__ import annotations

import numpy as np


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (truth, predicted), 1)
    return counts


def per_class(counts: np.ndarray) -> list[dict[str, float]]:
    """precision, recall, f1 and support for each class of a confusion matrix."""
    rows = []
    for c in range(len(counts)):
        hits, predicted, support = counts[c, c], counts[:, c].sum(), counts[c].sum()
        precision = hits / predicted if predicted else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(support)})
    return rows


def accuracy(truth: np.ndarray, predicted: np.ndarray) -> float | None:
    """Share of correct predictions; None for an empty set."""
    return float(np.mean(truth == predicted)) if len(truth) else None
