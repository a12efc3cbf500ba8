"""Saving matplotlib figures as PNGs that appear whole or not at all (ferlib.atomic)."""

from __future__ import annotations

from pathlib import Path

from ferlib import atomic


def save_png(figure: object, path: Path, dpi: int = 110) -> None:
    """Write the figure to path through a temporary file beside it, and free the figure."""
    import matplotlib.pyplot as plt

    try:
        with atomic.replacing(path) as tmp:
            figure.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(figure)
