"""Face tracks across the frames of a video, and each track's probabilities smoothed over time.

A short IoU tracker of this project's own: norfair 2.3 pins numpy below 2 (this project runs
numpy 2) and supervision's ByteTrack brings PyAV, requests and more for what is, with one
detector and a handful of faces per frame, a greedy match of boxes by overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ferlib.faces import iou


@dataclass
class Track:
    """One face followed through the video: its last box and smoothed probabilities, and its
    history (time, smoothed probabilities) for the summary."""

    id: int
    box: list[float]
    last_frame: int
    smoothed: np.ndarray
    times: list[float] = field(default_factory=list)
    history: list[np.ndarray] = field(default_factory=list)


MAX_SMOOTHING = 0.99  # at 1 a track would keep its first frame's probabilities for ever


class Tracker:
    """Gives every face a track id (greedy matching to the tracks seen within max_gap
    frames, by box overlap of at least min_iou) and replaces its probabilities by the
    track's exponential moving average: smoothed = smoothing * previous + (1 - smoothing) *
    this frame's (smoothing 0: no smoothing)."""

    def __init__(self, labels: tuple[str, ...], smoothing: float = 0.7, max_gap: int = 15, min_iou: float = 0.3):
        if not 0 <= smoothing <= MAX_SMOOTHING:
            raise ValueError(f"smoothing must be between 0 and {MAX_SMOOTHING}, got {smoothing!r}")
        self.labels, self.smoothing, self.max_gap, self.min_iou = labels, smoothing, max_gap, min_iou
        self.tracks: list[Track] = []

    def update(self, frame: int, time_s: float, faces: list[dict]) -> list[dict]:
        """The frame's faces with "track" added (and, with smoothing, label, probability,
        top_k and probabilities smoothed; this frame's own in "frame_probabilities")."""
        live = [t for t in self.tracks if frame - t.last_frame <= self.max_gap]
        pairs = sorted(
            ((iou(face["box"], track.box), i, track) for i, face in enumerate(faces) for track in live),
            key=lambda pair: -pair[0],
        )
        matched: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, i, track in pairs:
            if overlap >= self.min_iou and i not in matched and track.id not in used:
                matched[i] = track
                used.add(track.id)
        out = []
        for i, face in enumerate(faces):
            p = np.array([face["probabilities"][n] for n in self.labels], dtype=np.float64)
            track = matched.get(i)
            if track is None:
                track = Track(len(self.tracks) + 1, face["box"], frame, p)
                self.tracks.append(track)
            else:
                track.smoothed = self.smoothing * track.smoothed + (1 - self.smoothing) * p
            track.box, track.last_frame = face["box"], frame
            track.times.append(time_s)
            track.history.append(track.smoothed.copy())
            out.append(self.with_track(face, track))
        return out

    def with_track(self, face: dict, track: Track) -> dict:
        if not self.smoothing:
            return {**face, "track": track.id}
        s = track.smoothed
        best, ranked = int(np.argmax(s)), np.argsort(s)[::-1][: len(face["top_k"])]
        return {
            **face,
            "track": track.id,
            "label": self.labels[best],
            "label_id": best,
            "probability": round(float(s[best]), 4),
            "top_k": [[self.labels[j], round(float(s[j]), 4)] for j in ranked],
            "probabilities": {n: round(float(v), 4) for n, v in zip(self.labels, s)},
            "frame_probabilities": face["probabilities"],
        }
