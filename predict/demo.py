"""make demo: predict on a sample photo from an installed package (scikit-image's astronaut,
public domain) with the shipped model; writes out/demo.png and out/demo.json."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
from skimage import data

from ferlib import atomic, cli, cvio
from predict.__main__ import main as predict_main


def main(out: Path = Path("out")) -> int:
    photo = out / "astronaut.png"
    cvio.write_image(photo, cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    result = out / "demo.json"
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = predict_main([str(photo), "--out", str(out / "demo.png")])
    if code != 0:
        return code
    atomic.write_text(result, captured.getvalue())
    faces = json.loads(captured.getvalue())["faces"]
    for face in faces:
        print(
            f"face at {[round(v) for v in face['box']]}: {face['label']} ({face['probability']:.2f}); "
            f"next: {', '.join(f'{n} {p:.2f}' for n, p in face['top_k'][1:])}"
        )
    print(f"wrote {out / 'demo.png'} and {result}")
    return 0


if __name__ == "__main__":
    cli.run(main)
