"""Where a training run lives: the one place its name is made (make train, evaluate and ship
all pass only what the user gave: net, epochs, start weights, or a name of their own)."""

from __future__ import annotations

from pathlib import Path

SOFT_WEIGHT = 0.5  # make train SOFT= without SOFT_WEIGHT=: half soft targets, half hard labels


def run_name(
    net: str,
    epochs: float,
    weights: Path | None = None,
    seed: int | None = None,
    augment: str | None = None,
    soft: Path | None = None,
    soft_weight: float = SOFT_WEIGHT,
    base_lr: float | None = None,
    lr_policy: str | None = None,
    mixup: float | None = None,
) -> str:
    """<net>-e<epochs>, plus -aug-<augmentation name> when training images are augmented,
    -soft-<targets name>-w<weight> with soft targets, -mixup<alpha> with mixup, -from-<weights
    file name> for a warm start, -lr<rate> for a learning rate, -<policy> for a learning rate
    policy other than multistep and -seed<n> for a seed of the user's: two runs that differ in
    any of these never share a folder (a resumed run would otherwise continue the other one)."""
    augmented = f"-aug-{Path(augment).stem}" if augment else ""
    augmented += f"-soft-{Path(soft).name}-w{soft_weight:g}" if soft else ""
    augmented += f"-mixup{mixup:g}" if mixup else ""
    start = f"-from-{Path(weights).stem}" if weights else ""
    start += f"-lr{base_lr:g}" if base_lr is not None else ""
    start += f"-{lr_policy}" if lr_policy not in (None, "multistep") else ""
    seeded = f"-seed{seed}" if seed is not None else ""
    return f"{Path(net).name}-e{epochs:g}{augmented}{start}{seeded}"


if (
    __name__ == "__main__"
):  # the Makefile asks: python -m ferlib.runs NET EPOCHS [WEIGHTS] [SEED=n] [AUGMENT=x] [SOFT=y] [SOFT_WEIGHT=w] [LR=r]
    # [LR_POLICY=p] [MIXUP=a]
    import sys

    options = ("SEED=", "AUGMENT=", "SOFT=", "SOFT_WEIGHT=", "LR=", "LR_POLICY=", "MIXUP=")
    given = sys.argv[3:]
    named = dict(a.split("=", 1) for a in given if a.startswith(options))
    weights = [a for a in given if not a.startswith(options)]
    seed = int(named["SEED"]) if "SEED" in named else None
    soft = Path(named["SOFT"]) if "SOFT" in named else None
    soft_weight = float(named.get("SOFT_WEIGHT", SOFT_WEIGHT))
    base_lr = float(named["LR"]) if "LR" in named else None
    weights_file = Path(weights[0]) if weights else None
    print(
        run_name(
            sys.argv[1],
            float(sys.argv[2]),
            weights_file,
            seed,
            named.get("AUGMENT"),
            soft,
            soft_weight,
            base_lr,
            named.get("LR_POLICY"),
            float(named["MIXUP"]) if "MIXUP" in named else None,
        )
    )
