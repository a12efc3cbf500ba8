"""bench/torch_twin.py: PyTorch's twin of each net is the net Caffe builds from the same prototxt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import torch_twin

ROOT = Path(__file__).resolve().parent.parent
NETS = sorted(path.parent.name for path in ROOT.glob("prototxt/*/train_val.prototxt"))


@pytest.mark.parametrize("net_name", NETS)
def test_the_twin_has_caffes_shapes_and_parameter_count(net_name: str, pycaffe: object) -> None:
    twin = torch_twin.layers(net_name)
    side = torch_twin.crop_size(net_name)
    net = pycaffe.Net(str(ROOT / f"prototxt/{net_name}/deploy.prototxt"), pycaffe.TEST)
    net.blobs["data"].reshape(1, 1, side, side)
    net.reshape()
    for layer in twin:
        if layer.top is not None:
            assert net.blobs[layer.top].data.shape[1:] == layer.out, layer
    learned = sum(
        blob.data.size
        for name, blobs in net.params.items()
        if net.layer_dict[name].type != "BatchNorm"
        for blob in blobs
    )
    assert torch_twin.parameter_count(twin) == learned
    assert twin[-1].out == (7,)


def test_a_layer_without_a_twin_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pycaffe: object) -> None:
    (tmp_path / "prototxt/odd").mkdir(parents=True)
    (tmp_path / "prototxt/odd/train_val.prototxt").write_text(
        'layer { name: "data" type: "Data" top: "data" transform_param { crop_size: 8 } }\n'
        'layer { name: "act" type: "Sigmoid" bottom: "data" top: "data" }\n'
    )
    monkeypatch.setattr(torch_twin, "ROOT", tmp_path)
    with pytest.raises(ValueError, match="odd: layer act: no PyTorch twin for Caffe's Sigmoid"):
        torch_twin.layers("odd")


@pytest.mark.parametrize("net_name", NETS)
def test_the_built_twin_runs_a_batch_to_seven_scores(net_name: str, pycaffe: object) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is installed by make bench-train only")
    twin = torch_twin.from_json(torch_twin.to_json(torch_twin.layers(net_name)))
    assert twin == torch_twin.layers(net_name)
    model = torch_twin.build(twin)
    side = torch_twin.crop_size(net_name)
    assert model(torch.zeros(2, 1, side, side)).shape == (2, 7)
    assert sum(p.numel() for p in model.parameters()) == torch_twin.parameter_count(twin)
    assert np.isclose(model[1].eps, 1e-5)  # Caffe's BatchNorm default
