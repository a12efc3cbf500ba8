"""Expression probabilities for aligned 48x48 gray faces, from a trained Caffe model.

The input is prepared exactly as Caffe's TEST data layer prepares it in training: the
training mean (48x48) is subtracted and the centre crop_size x crop_size is taken. Both
backends of ferlib.nets run the same deploy.prototxt + .caffemodel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from ferlib.model_folder import TTA_VIEWS, ModelError, ModelFiles, crop_size, read_mean
from ferlib.nets import Net, NetError, forward_flops


def tta_average(views: np.ndarray, tta: str) -> np.ndarray:
    """Class probabilities under a test-time augmentation: the mean of the first views of
    Classifier.view_probabilities' (views, N, classes)."""
    return views[: TTA_VIEWS[tta]].mean(axis=0)


def face_mflops(files: ModelFiles) -> float:
    """Millions of operations the net spends on one view of one face (at its crop size): what
    an ensemble's cost per face is counted in, since members of different nets differ ~6-fold."""
    side = crop_size(files.deploy)
    shape = (1, 1, side, side)
    with _as_model_error(files):
        flops = forward_flops(files.deploy.read_bytes(), files.weights.read_bytes(), shape, str(files.weights))
    return flops / 1e6


@contextmanager
def _as_model_error(files: ModelFiles) -> Iterator[None]:
    """Loading or running a model folder's net fails as one ModelError naming the file (the one
    that could not be read, else the weights), whatever the cause, so the command line reports
    it in one line."""
    try:
        yield
    except OSError as error:
        raise ModelError(f"{error.filename or files.weights}: cannot read ({error.strerror})") from error
    except NetError as error:
        raise ModelError(str(error)) from error


class Classifier:
    """probabilities(faces) for aligned faces, (N, 48, 48) uint8 -> (N, classes) float32."""

    def __init__(self, files: ModelFiles, backend: str = "opencv"):
        self.files = files
        self.labels = files.labels
        self.crop = crop_size(files.deploy)
        self.mean = read_mean(files.mean, self.crop)
        with _as_model_error(files):
            self._net = Net.from_files(files.deploy, files.weights, ["prob"], backend)
        self._check_outputs()

    def _check_outputs(self) -> None:
        """A forward pass on a blank face: the weights fit the net, and the net has one output per label."""
        out = self._forward(np.zeros((1, 1, self.crop, self.crop), np.float32))
        if out.shape[1] != len(self.labels):
            raise ModelError(
                f"{self.files.deploy.parent}: the net has {out.shape[1]} outputs but {len(self.labels)} labels "
                f"({', '.join(self.labels)})"
            )

    def prepare(self, faces: np.ndarray, mirror: bool = False, offset: tuple[int, int] | None = None) -> np.ndarray:
        """Mean-subtracted crops (N, 1, crop, crop) float32, centred unless offset (y, x) is given."""
        side = faces.shape[-1]
        y, x = offset if offset is not None else ((side - self.crop) // 2,) * 2
        data = faces.astype(np.float32) - self.mean
        data = data[:, y : y + self.crop, x : x + self.crop]
        if mirror:
            data = data[:, :, ::-1]
        return np.ascontiguousarray(data[:, None])

    def views(self) -> list[tuple[bool, tuple[int, int] | None]]:
        """The ten test-time views as (mirror, offset): the centre crop, its mirror, then the
        four corner crops each plain and mirrored."""
        far = self.mean.shape[-1] - self.crop
        corners = [(m, corner) for corner in ((0, 0), (0, far), (far, 0), (far, far)) for m in (False, True)]
        return [(False, None), (True, None), *corners]

    def view_probabilities(
        self,
        faces: np.ndarray,
        count: int = 10,
        batch: int = 256,
        progress: Callable[[int], object] | None = None,
    ) -> np.ndarray:
        """Class probabilities of the first count views: (count, N, classes). progress, if
        given, is called after each batch with the net passes it took (views x faces), so
        that a caller can show a bar without ferlib knowing how it is drawn."""
        faces = np.asarray(faces, dtype=np.uint8).reshape(-1, *self.mean.shape)
        views = self.views()[:count]
        out = []
        for start in range(0, len(faces), batch):
            chunk = faces[start : start + batch]
            out.append(np.stack([self._forward(self.prepare(chunk, m, o)) for m, o in views]))
            if progress is not None:
                progress(len(views) * len(chunk))
        return np.concatenate(out, axis=1) if out else np.zeros((len(views), 0, len(self.labels)), np.float32)

    def probabilities(
        self,
        faces: np.ndarray,
        tta: str = "none",
        batch: int = 256,
        progress: Callable[[int], object] | None = None,
    ) -> np.ndarray:
        """Class probabilities; tta "mirror" averages with the flipped face, "ten" over the
        four corner and centre crops and their mirrors. progress: as view_probabilities'."""
        return tta_average(self.view_probabilities(faces, TTA_VIEWS[tta], batch, progress), tta)

    def _forward(self, data: np.ndarray) -> np.ndarray:
        with _as_model_error(self.files):
            (prob,) = self._net(data)
        return prob.reshape(len(data), -1)
