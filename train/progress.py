"""The bar over net passes that every long scoring step shows (train.evaluate, make ensemble,
make soup, train.teacher): one look, one unit, fed by Classifier.view_probabilities' progress."""

from __future__ import annotations

import sys

from tqdm import tqdm


def net_passes_bar(total: int) -> tqdm:
    """A bar over total net passes (views x faces) on stderr, cleared when done."""
    return tqdm(total=total, desc="net passes", unit=" passes", unit_scale=True, leave=False, file=sys.stderr)
