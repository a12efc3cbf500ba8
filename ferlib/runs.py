"""Where a training run lives: the one place its name is made (make train, evaluate and ship
all pass only what the user gave: net, epochs, start weights, or a name of their own)."""

from __future__ import annotations

from pathlib import Path


def run_name(net: str, epochs: float, weights: Path | None = None) -> str:
    """<net>-e<epochs>, plus -from-<weights file name> for a warm start."""
    start = f"-from-{Path(weights).stem}" if weights else ""
    return f"{Path(net).name}-e{epochs:g}{start}"


if __name__ == "__main__":  # the Makefile asks: python -m ferlib.runs NET EPOCHS [WEIGHTS]
    import sys

    print(run_name(sys.argv[1], float(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None))
