"""The compiled limit law against hand-written backprop and SGD; training, checkpoints."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from cognitive_action.declare.network import Network, layered
from cognitive_action.errors import OptionalDependencyError, ShapeError
from cognitive_action.learn import (
    CheckpointError,
    ModeNotAvailableError,
    compile_limit_law,
    load_digits_split,
    plot_learning_curves,
    sgd_baseline,
    train,
)
from cognitive_action.verify.laws import backprop_rates

ACT = {"tanh": (np.tanh, lambda a: 1 - np.tanh(a) ** 2),
       "logistic": (lambda a: 1 / (1 + np.exp(-a)),
                    lambda a: np.exp(-a) / (1 + np.exp(-a)) ** 2)}


def hand_gradient(net: Network, w: np.ndarray, e: np.ndarray, y: np.ndarray, act: str
                  ) -> np.ndarray:
    """-∂V/∂w for V = ½|x_out - y|², neuron by neuron on the graph (no matrices, slope
    from a, not from x): an independent reference."""
    sig, dsig = ACT[act]
    W = {key: w[i] for i, key in enumerate(net.w)}
    x, a = {}, {}
    for n, v in zip(net.inputs, e):
        x[n] = v
    for n in net.order[len(net.inputs):]:
        a[n] = sum(W[n, k] * x[k] for k in net.graph.predecessors(n))
        x[n] = sig(a[n])
    delta = {}
    for n in reversed(net.order):
        d = -(x[n] - y[net.outputs.index(n)]) if n in net.outputs else 0.0
        d += sum(W[j, n] * dsig(a[j]) * delta[j] for j in net.graph.successors(n))
        delta[n] = d
    return np.array([delta[j] * dsig(a[j]) * x[k] for (j, k) in net.w])


def skip_net() -> Network:
    g = nx.DiGraph([(1, 3), (2, 3), (1, 4), (3, 4), (2, 5), (4, 5), (3, 5), (1, 6), (5, 6),
                    (4, 6)])
    return Network(g, [1, 2], outputs=[6])


@pytest.mark.parametrize("make,act", [(lambda a: layered([4, 5, 3, 2], a), "tanh"),
                                      (lambda a: layered([3, 6, 2], a), "logistic"),
                                      (lambda a: skip_net(), "tanh")])
def test_per_sample_rates_equal_hand_backprop(make, act):
    net = make(act)
    k = compile_limit_law(net.problem())
    rng = np.random.default_rng(3)
    for _ in range(5):
        w = rng.normal(size=len(net.w))
        e = rng.normal(size=len(net.inputs))
        y = rng.normal(size=len(net.outputs))
        gamma = 2.5
        _, rates = k.rates(k.to_blocks(w), e, y, gamma)
        np.testing.assert_allclose(k.from_blocks(rates) * gamma, hand_gradient(net, w, e, y, act),
                                   rtol=0, atol=1e-12)


def test_kernel_is_the_limit_of_eq_10():
    """The compiled law equals the engine's eq. (10) taken to m_x/m_W → 0 numerically."""
    net = layered([2, 3, 1])
    k = compile_limit_law(net.problem())
    w = np.random.default_rng(0).normal(size=len(net.w))
    arcs = list(net.graph.edges)
    pos = {key: i for i, key in enumerate(net.w)}
    r = backprop_rates(net, np.array([w[pos[j, i]] for (i, j) in arcs]),
                       {"e1": 0.3, "e2": -0.7, "y6": 0.4}, gamma=1.0)
    _, rates = k.rates(k.to_blocks(w), np.array([0.3, -0.7]), np.array([0.4]))
    mine = k.from_blocks(rates)
    for (j, i), v in zip(net.w, mine):
        assert v == pytest.approx(r.w_dot[i, j], abs=1e-6)


def test_epoch_weights_equal_numpy_sgd_per_step():
    """Same gradient (the limit law is backprop), same order of samples, same float ops
    up to round-off (matrix products summed in the same order, slope 1 - x² both ways):
    the weights agree to 1e-9 after every single step of an epoch."""
    net = layered([5, 4, 3])
    k = compile_limit_law(net.problem())
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(40, 5)), rng.normal(size=(40, 3)) * 0.5
    w = rng.normal(size=len(net.w)) * 0.5
    blocks = k.to_blocks(w)
    W1, W2 = (b.copy() for b in blocks)
    eta = 0.1
    for i in rng.permutation(40):
        k.step(blocks, X[i], Y[i], eta, gamma=3.0)
        h = np.tanh(W1 @ X[i])
        o = np.tanh(W2 @ h)
        s2 = (Y[i] - o) * (1 - o ** 2)
        s1 = (W2.T @ s2) * (1 - h ** 2)
        W2 += eta * np.outer(s2, h)
        W1 += eta * np.outer(s1, X[i])
        np.testing.assert_allclose(blocks[0], W1, rtol=0, atol=1e-9)
        np.testing.assert_allclose(blocks[1], W2, rtol=0, atol=1e-9)


def _tiny(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    labels = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    return X, labels


def test_train_matches_sgd_baseline_and_learns():
    net = layered([4, 6, 3])
    p = net.problem()
    tr, te = _tiny(80, 0), _tiny(40, 1)
    h = train(p, tr, te, epochs=4, learning_rate=0.1, seed=2)
    s = sgd_baseline(p, tr, te, epochs=4, learning_rate=0.1, seed=2)
    np.testing.assert_allclose(h.weights, s.weights, rtol=0, atol=1e-9)
    assert abs(h.test_accuracy[-1] - s.test_accuracy[-1]) <= 0.005
    assert h.train_loss[-1] < h.train_loss[0]
    assert len(h.test_accuracy) == 5 and h.epochs == 4


def test_resume_equals_uninterrupted_run_bit_for_bit(tmp_path):
    p = layered([4, 5, 3]).problem()
    tr, te = _tiny(50, 0), _tiny(20, 1)
    full = train(p, tr, te, epochs=4, learning_rate=0.05, seed=1)
    part = train(p, tr, te, epochs=2, learning_rate=0.05, seed=1, out=tmp_path)
    assert part.epochs == 2 and (tmp_path / "checkpoint.npz").is_file()
    rest = train(p, tr, te, epochs=4, learning_rate=0.05, seed=1, out=tmp_path)
    assert rest.resumed_from == 2
    assert np.array_equal(rest.weights, full.weights)
    assert rest.train_loss == full.train_loss and rest.test_accuracy == full.test_accuracy
    assert sorted(f.name for f in tmp_path.iterdir()) == ["checkpoint.npz"]  # no temp left


def test_checkpoint_of_another_run_is_refused(tmp_path):
    p = layered([4, 5, 3]).problem()
    tr = _tiny(30, 0)
    train(p, tr, epochs=1, learning_rate=0.05, seed=1, out=tmp_path)
    with pytest.raises(CheckpointError, match="another problem") as info:
        train(p, tr, epochs=2, learning_rate=0.07, seed=1, out=tmp_path)
    assert info.value.fix
    with pytest.raises(CheckpointError):
        train(layered([4, 6, 3]).problem(), tr, epochs=2, learning_rate=0.05, seed=1,
              out=tmp_path)
    # starting over is allowed explicitly
    assert train(p, tr, epochs=1, learning_rate=0.07, seed=1, out=tmp_path,
                 resume=False).epochs == 1


@pytest.mark.parametrize("data,match", [
    ((np.full((3, 4), np.nan), np.array([0, 1, 2])), r"train_data\.X has NaN"),
    ((np.array([[0.0] * 4, [0.0, 0.0, np.inf, 0.0]]), np.array([0, 1])),
     r"train_data\.X has NaN or infinite values \(1 non-finite; the first at \[1, 2\]: inf\)"),
    ((np.zeros((2, 4)), np.array([[0.0, 1, 0], [np.nan, 0, 1]])),
     r"train_data\.Y has NaN or infinite values \(1 non-finite; the first at \[1, 0\]: nan\)"),
    ((np.zeros((3, 5)), np.array([0, 1, 2])), r"train_data\.X has shape"),
    ((np.zeros((3, 4)), np.array([0, 1, 3])), r"train_data\.Y has labels out of range"),
    ((np.zeros((3, 4)), np.zeros((3, 2))), r"train_data\.Y has shape"),
    ((np.zeros((3, 4)), np.array([0, 1])), "3 inputs but 2 targets")])
def test_bad_data_is_rejected_naming_the_field(data, match):
    with pytest.raises(ShapeError, match=match) as info:
        train(layered([4, 5, 3]).problem(), data, epochs=1, learning_rate=0.1)
    assert info.value.fix


def test_modes_without_runner_raise_a_typed_error(monkeypatch):
    import importlib

    train_module = importlib.import_module("cognitive_action.learn.train")

    monkeypatch.setattr(train_module, "RUNNERS", {})
    monkeypatch.setattr(train_module, "BUILTIN_RUNNER_MODULES", ())
    with pytest.raises(ModeNotAvailableError, match="dynamics") as info:
        train(layered([4, 5, 3]).problem(), _tiny(), mode="dynamics", epochs=1,
              learning_rate=0.1)
    assert isinstance(info.value, NotImplementedError) and info.value.fix


def test_built_in_runners_register_without_extra_imports():
    import importlib

    train_module = importlib.import_module("cognitive_action.learn.train")

    train_module.load_builtin_runners()
    assert {"dynamics", "diffusion"} <= set(train_module.RUNNERS)


def test_learning_curve_figure(tmp_path):
    p = layered([4, 5, 3]).problem()
    tr, te = _tiny(40, 0), _tiny(20, 1)
    h = train(p, tr, te, epochs=2, learning_rate=0.05)
    s = sgd_baseline(p, tr, te, epochs=2, learning_rate=0.05)
    path = plot_learning_curves({"limit law": h, "NumPy SGD": s}, tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the plotted series are the histories' lists; the legends lie below the axes
    import matplotlib.pyplot as plt

    from cognitive_action.learn.train import learning_curve_figure

    fig = learning_curve_figure({"limit law": h, "NumPy SGD": s})
    try:
        loss, acc = fig.axes
        got = {ln.get_label(): list(ln.get_ydata()) for ln in loss.get_lines()}
        assert got == {"limit law train": h.train_loss, "limit law test": h.test_loss,
                       "NumPy SGD train": s.train_loss, "NumPy SGD test": s.test_loss}
        got = {ln.get_label(): list(ln.get_ydata()) for ln in acc.get_lines()}
        assert got == {"limit law test": h.test_accuracy, "NumPy SGD test": s.test_accuracy}
        fig.canvas.draw()
        for ax in fig.axes:
            assert ax.get_legend().get_window_extent().y1 <= ax.get_window_extent().y0
    finally:
        plt.close(fig)


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(OptionalDependencyError, match="scikit-learn") as info:
        load_digits_split()
    assert "[data]" in info.value.fix


def test_digits_tiny_limit_law_equals_sgd():
    pytest.importorskip("sklearn")
    p = layered([64, 8, 10]).problem()
    tr, te = load_digits_split(0.2, seed=0, limit=300)
    h = train(p, tr, te, epochs=1, learning_rate=0.05, seed=0)
    s = sgd_baseline(p, tr, te, epochs=1, learning_rate=0.05, seed=0)
    assert abs(h.test_accuracy[-1] - s.test_accuracy[-1]) <= 0.005


@pytest.mark.slow
def test_digits_64_32_10_limit_law_equals_sgd():
    """The design notes' setting: 64-32-10 tanh, squared loss, 3 epochs, lr 0.05."""
    pytest.importorskip("sklearn")
    p = layered([64, 32, 10]).problem()
    tr, te = load_digits_split(0.2, seed=0)
    h = train(p, tr, te, epochs=3, learning_rate=0.05, seed=0)
    s = sgd_baseline(p, tr, te, epochs=3, learning_rate=0.05, seed=0)
    assert abs(h.test_accuracy[-1] - s.test_accuracy[-1]) <= 0.005
    assert s.test_accuracy[-1] > 0.85


def _label_stream(**kw):
    from cognitive_action.data import Stream

    rng = np.random.default_rng(4)
    X, labels = rng.uniform(-1, 1, (24, 3)), rng.integers(0, 2, 24)
    net = layered([3, 4, 2])
    return net, X, labels, Stream(X, labels, network=net, n_classes=2, **({"tau": 1.0} | kw))


def test_a_data_stream_trains_with_its_labels():
    # a Stream of class labels (as digits_stream returns) gives accuracy, and the run
    # equals the one on (X, labels): the same numbers as hand-written SGD
    net, X, labels, stream = _label_stream()
    p = net.problem()
    h = train(p, stream, stream, epochs=2, learning_rate=0.1, seed=3)
    ref = sgd_baseline(p, (X, labels), (X, labels), epochs=2, learning_rate=0.1, seed=3)
    assert len(h.test_accuracy) == 3
    assert h.test_accuracy == ref.test_accuracy
    np.testing.assert_allclose(h.train_loss, ref.train_loss, rtol=1e-12)


def test_streams_the_training_cannot_present_are_refused_naming_the_field():
    import sympy as sp

    from cognitive_action.declare import symbols as S
    from cognitive_action.errors import DataError
    from cognitive_action.learn.runners import DynamicsOptions

    net, _, _, stream = _label_stream(interpolate=True)
    with pytest.raises(DataError) as info:
        train(net.problem(), stream, epochs=1, learning_rate=0.1)
    assert info.value.field == "train_data.interpolate" and info.value.fix
    # a stream's own presentation time differing from the run's: refused, not ignored
    net, _, _, stream = _label_stream(tau=0.5)
    theta, = S.parameters("theta")
    p = net.problem(weight=sp.exp(theta * S.t), parameters=[theta])
    with pytest.raises(DataError) as info:
        train(p, stream, mode="dynamics", epochs=1, learning_rate=0.1,
              options=DynamicsOptions(theta=50.0))
    assert info.value.field == "train_data.tau" and "tau=0.5" in info.value.fix
    h = train(p, stream, mode="dynamics", epochs=1, learning_rate=0.1,
              options=DynamicsOptions(theta=50.0, tau=0.5))
    assert h.settings["tau"] == 0.5 and len(h.test_accuracy) == 0
