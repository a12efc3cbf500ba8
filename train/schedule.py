"""The solver values that follow from the data: iterations per epoch, max_iter, the learning
rate policy and its stepvalues, exact test coverage, snapshot interval. Everything else comes
from the checked-in prototxts."""

from __future__ import annotations

import math
from dataclasses import dataclass

POLICIES = ("multistep", "poly")  # x0.1 at 60% and 85% of max_iter (the reference's), or linear decay to 0


@dataclass(frozen=True)
class Schedule:
    """Solver arithmetic for one run."""

    epochs: float
    batch_size: int
    train_size: int
    val_size: int
    test_batch: int
    steps: tuple[float, ...] = (0.60, 0.85)
    snapshot_epochs: int = 2
    policy: str = "multistep"

    @property
    def epoch_iters(self) -> int:
        """Iterations per epoch (the last batch of an epoch wraps around)."""
        return math.ceil(self.train_size / self.batch_size)

    @property
    def max_iter(self) -> int:
        return max(1, round(self.epochs * self.train_size / self.batch_size))

    @property
    def stepvalues(self) -> list[int]:
        """Where multistep divides the learning rate by 10; poly has none."""
        if self.policy != "multistep":
            return []
        return [max(1, round(fraction * self.max_iter)) for fraction in self.steps]

    @property
    def test_iter(self) -> int:
        return self.val_size // self.test_batch

    @property
    def snapshot(self) -> int:
        return min(self.max_iter, self.snapshot_epochs * self.epoch_iters)


def exact_test_batch(val_size: int, largest: int = 100) -> int:
    """The largest TEST batch size <= largest that divides val_size, so that
    test_iter x batch covers every validation image exactly once (3,589 -> 97 x 37)."""
    if val_size <= 0:
        raise ValueError("the validation set is empty")
    return max(d for d in range(1, min(largest, val_size) + 1) if val_size % d == 0)
