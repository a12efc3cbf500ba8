"""The Mixup layer (scripts/caffe-patches/0005): its forward pass against a NumPy reference of
its formulas, the weights' Beta(alpha, alpha) distribution and the partners' permutation, the
TEST phase, the seed, the backward pass as the forward's adjoint and by finite differences,
and the refusals at set-up."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

caffe = pytest.importorskip("caffe")  # make test-fast runs without the build; conftest insists on it in make test
pytestmark = pytest.mark.caffe
N, C, SIDE, K = 16, 2, 5, 3


def mixup_net(tmp_path: Path, phase: str = "TRAIN", params: str = "alpha: 0.4 label_classes: 3", seed: int = 7):
    """Images x, probability vectors t, an identity probe e (row i is e_i, so its mixed top
    shows each row's weight and partner) and class labels y, through one Mixup layer."""
    net_file = tmp_path / f"net{len(list(tmp_path.glob('net*')))}.prototxt"
    net_file.write_text(
        "force_backward: true\n"
        f'layer {{ name: "in" type: "Input" top: "x" top: "t" top: "e" top: "y" input_param {{\n'
        f"  shape {{ dim: {N} dim: {C} dim: {SIDE} dim: {SIDE} }} shape {{ dim: {N} dim: {K} }}\n"
        f"  shape {{ dim: {N} dim: {N} }} shape {{ dim: {N} }} }} }}\n"
        'layer { name: "mix" type: "Mixup" bottom: "x" bottom: "t" bottom: "e" bottom: "y"\n'
        f'  top: "mx" top: "mt" top: "me" top: "my" mixup_param {{ {params} }} }}\n'
    )
    caffe.set_mode_cpu()
    caffe.set_random_seed(seed)
    net = caffe.Net(str(net_file), getattr(caffe, phase))
    rng = np.random.default_rng(seed)
    net.blobs["x"].data[...] = rng.normal(size=(N, C, SIDE, SIDE))
    net.blobs["t"].data[...] = rng.dirichlet(np.ones(K), size=N)
    net.blobs["e"].data[...] = np.eye(N)
    net.blobs["y"].data[...] = rng.integers(0, K, size=N)
    return net


def weights_and_partners(mixed_identity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's weight and partner, read off the mixed identity (a row mixed with itself: 1, itself)."""
    others = mixed_identity - np.diag(np.diag(mixed_identity))
    partners = np.where(others.max(axis=1) > 0, others.argmax(axis=1), np.arange(N))
    weights = np.where(partners != np.arange(N), np.diag(mixed_identity), 1.0)
    return weights, partners


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(K)[labels.astype(int)]


def test_forward_mixes_every_bottom_with_one_weight_and_partner_per_row(tmp_path: Path) -> None:
    net = mixup_net(tmp_path)
    net.forward()
    blobs = {name: net.blobs[name].data.copy() for name in ("x", "t", "y", "mx", "mt", "me", "my")}
    weights, partners = weights_and_partners(blobs["me"])
    assert sorted(partners) == list(range(N)) and (partners != np.arange(N)).any()  # a permutation, not the identity
    assert ((weights > 0) & (weights < 1))[partners != np.arange(N)].all()

    def mixed(values: np.ndarray) -> np.ndarray:
        w = weights.reshape(-1, *([1] * (values.ndim - 1)))
        return w * values + (1 - w) * values[partners]

    np.testing.assert_allclose(blobs["mx"], mixed(blobs["x"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(blobs["mt"], mixed(blobs["t"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(blobs["my"], mixed(one_hot(blobs["y"])), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(blobs["mt"].sum(axis=1), 1, rtol=1e-5)  # probability vectors stay so
    net.forward()  # drawn anew at every pass
    assert not np.array_equal(net.blobs["me"].data, blobs["me"])


def beta_cdf(x: np.ndarray, alpha: float) -> np.ndarray:
    """Beta(alpha, alpha)'s CDF without SciPy: on [0, 1/2], s = u^(1/alpha) makes the integrand
    bounded (1 - u^(1/alpha))^(alpha - 1) / (alpha B), integrated by the trapezoid rule; the
    other half by symmetry."""
    u = np.linspace(0, 0.5**alpha, 200_001)
    integrand = (1 - u ** (1 / alpha)) ** (alpha - 1)
    cumulative = np.concatenate([[0], np.cumsum((integrand[1:] + integrand[:-1]) / 2 * np.diff(u))])
    cumulative *= math.gamma(2 * alpha) / math.gamma(alpha) ** 2 / alpha
    x = np.asarray(x, dtype=np.float64)
    below = np.interp(np.minimum(x, 1 - x) ** alpha, u, cumulative)
    return np.where(x <= 0.5, below, 1 - below)


@pytest.mark.parametrize("alpha", [0.4, 1.0, 2.0])
def test_the_weights_follow_beta_alpha_alpha(tmp_path: Path, alpha: float) -> None:
    net = mixup_net(tmp_path, params=f"alpha: {alpha}")
    drawn = []
    for _ in range(400):
        net.forward()
        weights, partners = weights_and_partners(net.blobs["me"].data)
        drawn.extend(weights[partners != np.arange(N)])
    drawn = np.sort(drawn)
    assert len(drawn) > 5000
    empirical = np.arange(1, len(drawn) + 1) / len(drawn)
    assert np.abs(empirical - beta_cdf(drawn, alpha)).max() < 1.63 / math.sqrt(len(drawn))  # KS test at 1%
    assert abs(drawn.var() - 1 / (4 * (2 * alpha + 1))) < 0.01


def test_the_test_phase_passes_every_bottom_through(tmp_path: Path) -> None:
    net = mixup_net(tmp_path, phase="TEST")
    net.forward()
    for bottom, top in (("x", "mx"), ("t", "mt"), ("e", "me")):
        np.testing.assert_array_equal(net.blobs[top].data, net.blobs[bottom].data)
    np.testing.assert_array_equal(net.blobs["my"].data, one_hot(net.blobs["y"].data))


def test_the_seed_decides_the_draws(tmp_path: Path) -> None:
    def draws(seed: int) -> np.ndarray:
        net = mixup_net(tmp_path, seed=seed)
        net.forward()
        return net.blobs["me"].data.copy()

    np.testing.assert_array_equal(draws(3), draws(3))
    assert not np.array_equal(draws(3), draws(4))


def test_backward_is_the_adjoint_of_the_forward_and_matches_finite_differences(tmp_path: Path) -> None:
    net = mixup_net(tmp_path, seed=11)
    rng = np.random.default_rng(0)
    gradients = {top: rng.normal(size=net.blobs[top].data.shape) for top in ("mx", "mt")}

    def objective() -> float:  # <top, g> summed over the differentiable tops, the draws of seed 11
        caffe.set_random_seed(11)
        net.forward()
        return sum(float((net.blobs[top].data * g).sum()) for top, g in gradients.items())

    value = objective()
    for top, g in gradients.items():
        net.blobs[top].diff[...] = g
    net.backward()
    assert not net.blobs["y"].diff.any()  # labels take no gradient
    # the map is linear in each bottom: <J b, g> = <b, J^T g>
    adjoint = sum(float((net.blobs[b].data * net.blobs[b].diff).sum()) for b in ("x", "t"))
    assert adjoint == pytest.approx(value, rel=1e-5)
    analytic = net.blobs["x"].diff.copy()
    step = 1e-2
    for index in [(0, 0, 0, 0), (3, 1, 2, 4), (N - 1, 0, 4, 1), (7, 1, 1, 1)]:
        original = net.blobs["x"].data[index]
        net.blobs["x"].data[index] = original + step
        above = objective()
        net.blobs["x"].data[index] = original - step
        below = objective()
        net.blobs["x"].data[index] = original
        assert (above - below) / (2 * step) == pytest.approx(analytic[index], rel=1e-3, abs=1e-4)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("alpha: 0", "Mixup: alpha must be positive"),
        ("alpha: 0.2 label_classes: 2", "Mixup: a label outside 0..1"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, params: str, message: str) -> None:
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
        "from test_caffe_mixup import mixup_net; net = mixup_net(Path(sys.argv[2]), params=sys.argv[3]); "
        "net.blobs['y'].data[...] = 2; net.forward()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent), str(tmp_path), params],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert message in result.stderr
