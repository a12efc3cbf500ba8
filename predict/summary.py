"""What a video (or a camera session) showed, per face track: when it was seen, for how many
frames, the share of each expression and the dominant one; as JSON, CSV and a timeline plot,
written beside the annotated video."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ferlib import atomic
from ferlib.figures import save_png
from predict.tracking import Tracker

MAX_PLOTTED_TRACKS = 8  # the longest tracks get a panel each in the timeline


def summarise(tracker: Tracker, header: dict) -> dict:
    """header (schema, model, source, fps, frames) and one entry per track."""
    tracks = []
    for track in tracker.tracks:
        labels = np.argmax(np.array(track.history), axis=1)
        shares = {n: round(float(np.mean(labels == i)), 4) for i, n in enumerate(tracker.labels)}
        tracks.append(
            {
                "track": track.id,
                "first_s": track.times[0],
                "last_s": track.times[-1],
                "frames": len(track.times),
                "shares": shares,
                "dominant": max(shares, key=shares.get),
            }
        )
    return {**header, "tracks": tracks}


def write_summary(video: Path, summary: dict, tracker: Tracker) -> list[Path]:
    """<video>.summary.json, <video>.summary.csv and <video>.timeline.png; returns them."""
    base = video.with_name(video.name)
    paths = [Path(f"{base}.summary.json"), Path(f"{base}.summary.csv"), Path(f"{base}.timeline.png")]
    atomic.write_json(paths[0], summary)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["track", "first_s", "last_s", "frames", "dominant", *tracker.labels])
    for t in summary["tracks"]:
        writer.writerow([t["track"], t["first_s"], t["last_s"], t["frames"], t["dominant"], *t["shares"].values()])
    atomic.write_text(paths[1], text.getvalue())
    timeline_png(tracker, paths[2])
    return paths


def timeline_png(tracker: Tracker, path: Path) -> None:
    """Each long track's smoothed probabilities of every expression over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracks = sorted(tracker.tracks, key=lambda t: -len(t.times))[:MAX_PLOTTED_TRACKS]
    figure, axes = plt.subplots(max(1, len(tracks)), 1, figsize=(9, 1.2 + 1.8 * max(1, len(tracks))), squeeze=False)
    for ax, track in zip(axes[:, 0], tracks):
        history = np.array(track.history)
        marker = "o" if len(track.times) < 30 else None  # a short track is a few dots, not a line
        for i, name in enumerate(tracker.labels):
            ax.plot(track.times, history[:, i], label=name, linewidth=1.2, marker=marker, markersize=3)
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel(f"track {track.id}")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(ncol=len(tracker.labels), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.35))
    axes[-1, 0].set_xlabel("time (s)")
    if not tracks:
        axes[0, 0].text(0.5, 0.5, "no face found", ha="center", va="center")
    figure.tight_layout()
    save_png(figure, path, dpi=100)
