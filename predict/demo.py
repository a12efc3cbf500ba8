"""make demo: predict on a sample photo from an installed package (scikit-image's astronaut,
public domain) with the shipped model; writes out/demo.png and out/demo.json."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import cv2
from skimage import data

from predict.__main__ import main as predict_main


def main(out: Path = Path("out")) -> int:
    out.mkdir(parents=True, exist_ok=True)
    photo = out / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    result = out / "demo.json"
    with open(result, "w") as handle, contextlib.redirect_stdout(handle):
        code = predict_main([str(photo), "--out", str(out / "demo.png")])
    if code != 0:
        return code
    faces = json.loads(result.read_text())["faces"]
    for face in faces:
        print(
            f"face at {[round(v) for v in face['box']]}: {face['label']} ({face['probability']:.2f}); "
            f"next: {', '.join(f'{n} {p:.2f}' for n, p in face['top_k'][1:])}"
        )
    print(f"wrote {out / 'demo.png'} and {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
