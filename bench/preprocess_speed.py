"""The whole `make preprocess` on the real FER2013 file, timed.

    python bench/preprocess_speed.py [--fer2013 ../shared/data/fer2013.csv.gz]

Builds into a temporary folder (removed afterwards) with the default settings and two
worker processes, and writes bench/results/preprocess_speed.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_results  # noqa: E402
from preprocess.build import Settings, build  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fer2013", type=Path, default=Path("../shared/data/fer2013.csv.gz"))
    args = parser.parse_args()
    if not args.fer2013.exists():
        sys.exit(f"error: {args.fer2013}: no such file (the benchmark needs the real FER2013 csv)")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        manifest = build(args.fer2013, Path(tmp) / "fer2013", Settings(), workers=2)
        wall = time.time() - start
    write_results(
        "preprocess_speed",
        {
            "input": str(args.fer2013),
            "rows": sum(c["total"] for c in manifest["counts"].values()),
            "wall_seconds": round(wall, 1),
            "stages_seconds": manifest["timings"],
            "faces": manifest["faces"],
            "bad_rows": manifest["bad_rows"]["count"],
            "output_bytes": manifest["outputs"],
        },
    )


if __name__ == "__main__":
    main()
