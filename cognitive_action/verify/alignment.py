"""Alignment of a learning law with the gradient along a training run, not at one state.

A law that is not exact (feedback alignment, direct feedback alignment, a user's law)
is judged by how its weight update lines up with the true gradient while it learns:
feedback alignment starts near 90 degrees in the hidden layers and, as the forward
weights come to align with the fixed feedback weights, the angle falls (Lillicrap et
al. 2016). :func:`alignment_over_training` trains a feedforward network with the law's
own updates on a synthetic **teacher-student stream** and measures, per layer and at
intervals, the four metrics of :mod:`cognitive_action.verify.metrics` between the
law's update and the gradient; :func:`check_alignment` turns the run into a
:class:`~cognitive_action.verify.report.Check` with the per-layer table over time.

The stream: inputs ``e ~ N(0, 1)`` drawn fresh at every step; targets ``y = f_T(e)``
from a fixed random teacher, the same network with weights ``N(0, s²/fan_in)``; the
student starts from its own random weights. Teacher, student, stream and probe batch
are four children of one :class:`numpy.random.SeedSequence`, so none is a copy of
another and a run is reproducible from ``seed``. (The data streams of the "learning
from data" issue will replace the synthetic one when they exist.)

The training step is plain SGD in NumPy with the law's rates: ``w ← w + η γ mean(Ẇ)``
over a minibatch (``γẆ = -∂V/∂w`` for backprop). At each measurement the law's update
and the gradient are summed over a fixed probe batch and compared layer by layer (the
layer of a weight is the depth of the neuron it feeds); the gradient is backprop through
``W`` written out in NumPy over the batch (checked against CasADi AD in the tests).

Examples
--------
>>> import cognitive_action as ca
>>> from cognitive_action.verify.laws import feedback_alignment
>>> h = alignment_over_training(ca.layered([3, 6, 2]), feedback_alignment(seed=1),
...                             steps=40, every=20, batch=4, probe=8)
>>> h.steps.tolist(), h.layers
([0, 20, 40], (1, 2))
>>> bool(np.all(h.angle[:, 1] < 1e-6))       # the output layer gets the exact error
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cognitive_action.declare.initializers import initialize
from cognitive_action.declare.network import Network
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.symbols import dot
from cognitive_action.derive.network import NetworkState, derive_network
from cognitive_action.errors import DeclarationError
from cognitive_action.verify import metrics
from cognitive_action.verify.laws import (
    EngineLaw,
    Law,
    LawEvaluator,
    LearningLaw,
    as_learning_law,
    derived_limit,
    derived_rates,
)
from cognitive_action.verify.reference import depths, network_of
from cognitive_action.verify.report import Check

__all__ = ["AlignmentHistory", "alignment_over_training", "check_alignment", "UntrainableError"]

#: The four per-layer metrics of a history, by their names in tables.
METRICS = ("angle_deg", "cosine", "relative_error", "sign_agreement")


@dataclass(frozen=True)
class AlignmentHistory:
    """Per-layer alignment of a law's update with the gradient along a training run.

    Attributes
    ----------
    law
        The law's name.
    steps
        Training steps at which the metrics were measured, shape ``(T,)``.
    layers
        Depth of the neurons the weights of each layer feed (inputs at depth 0).
    weights
        Number of weights per layer.
    angle, cosine, relative_error, sign_agreement
        Shape ``(T, L)``: law's update against the gradient, summed over the probe
        batch; ``NaN`` where a metric is undefined (a zero update).
    loss
        Mean loss ``V`` of the student on the probe batch, shape ``(T,)``.
    settings
        Seeds, step size, batch sizes, the network's size and ``diverged_at``: the step
        at which the law's update or the weights stopped being finite (the run stops
        there; ``None`` if they never did).
    """

    law: str
    steps: np.ndarray
    layers: tuple[int, ...]
    weights: tuple[int, ...]
    angle: np.ndarray
    cosine: np.ndarray
    relative_error: np.ndarray
    sign_agreement: np.ndarray
    loss: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self) -> list[dict[str, float]]:
        """One row per measurement and layer: step, layer, weights, the four metrics and
        the probe loss."""
        rows = []
        for t, step in enumerate(self.steps):
            for i, layer in enumerate(self.layers):
                rows.append({"step": int(step), "layer": layer, "weights": self.weights[i],
                             "angle_deg": float(self.angle[t, i]),
                             "cosine": float(self.cosine[t, i]),
                             "relative_error": float(self.relative_error[t, i]),
                             "sign_agreement": float(self.sign_agreement[t, i]),
                             "loss": float(self.loss[t])})
        return rows

    def trend(self) -> list[dict[str, float]]:
        """Per layer: the metrics at the first and the last measurement and the
        least-squares slope of the angle, in degrees per 100 steps."""
        out = []
        x = self.steps.astype(float)
        for i, layer in enumerate(self.layers):
            a = self.angle[:, i]
            ok = np.isfinite(a)
            slope = (float(np.polyfit(x[ok], a[ok], 1)[0]) * 100.0
                     if ok.sum() >= 2 and np.ptp(x[ok]) > 0 else float("nan"))
            row: dict[str, float] = {"layer": layer}
            for name, arr in zip(METRICS, (self.angle, self.cosine, self.relative_error,
                                           self.sign_agreement)):
                row[f"{name}_first"] = float(arr[0, i])
                row[f"{name}_last"] = float(arr[-1, i])
            row["angle_slope_per_100_steps"] = slope
            out.append(row)
        return out


class _Student:
    """A feedforward network on a batch in NumPy (rows are samples): forward pass,
    loss and the gradient by the chain rule through ``W``."""

    def __init__(self, net: Network, ev: LawEvaluator, targets: Mapping[str, int],
                 values: Mapping[str, float]) -> None:
        self.net, self.ev = net, ev
        idx = {j: i for i, j in enumerate(net.order)}
        wpos = {key: i for i, key in enumerate(net.w)}         # (target, source) order
        self.n = len(net.order)
        self.inputs = np.array([idx[j] for j in net.inputs], dtype=int)
        self.feeds = [(idx[j], np.array([idx[k] for k in net.graph.predecessors(j)]),
                       np.array([wpos[j, k] for k in net.graph.predecessors(j)]), j)
                      for j in net.order if j not in net.inputs]
        self.w_target = np.array([idx[j] for (j, _k) in net.w], dtype=int)
        self.w_source = np.array([idx[k] for (_j, k) in net.w], dtype=int)
        self.targets, self.values = targets, values

    def forward(self, w: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Outputs ``x`` and slopes ``σ'(a)`` (0 at the inputs), shape ``(batch, n)``."""
        x = np.zeros((e.shape[0], self.n))
        slope = np.zeros_like(x)
        x[:, self.inputs] = e
        for j, src, wi, label in self.feeds:
            a = x[:, src] @ w[wi]
            x[:, j] = self.ev.sigma_of(label, a)
            slope[:, j] = self.ev.slope_of(label, a)
        return x, slope

    def others(self, w: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        """The loss's other symbols, a column per symbol (targets from ``y``)."""
        fixed = {k: v for k, v in self.values.items() if k not in self.targets}
        const = self.ev.other_values(w, fixed | dict.fromkeys(self.targets, 0.0))
        return [y[:, self.targets[str(s)]] if str(s) in self.targets
                else np.full(y.shape[0], c) for s, c in zip(self.ev.others, const)]

    def gradient(self, w: np.ndarray, e: np.ndarray, y: np.ndarray, gamma: float
                 ) -> tuple[np.ndarray, float]:
        """Sum over the batch of ``-∂V/∂w / γ`` (``net.w`` order) and the mean loss."""
        x, slope = self.forward(w, e)
        cols, other = list(x.T), self.others(w, y)
        batch = (x.shape[0],)
        d = -np.column_stack([np.broadcast_to(np.asarray(g, dtype=float), batch)
                              for g in self.ev.grad(cols, other)])
        for j, src, wi, _ in reversed(self.feeds):             # δ_k += w_jk σ'(a_j) δ_j
            d[:, src] += (d[:, j] * slope[:, j])[:, None] * w[wi][None, :]
        g = np.sum(d[:, self.w_target] * slope[:, self.w_target] * x[:, self.w_source],
                   axis=0) / gamma
        loss = float(np.mean(np.broadcast_to(np.asarray(self.ev.loss(cols, other),
                                                        dtype=float), batch)))
        return g, loss


class UntrainableError(DeclarationError):
    """The problem cannot be trained on a teacher-student stream: its loss names no
    target signal ``y<o>`` (a teacher cannot set targets), or it depends on the weights
    (the NumPy gradient reference covers ``V(x, y)`` only)."""


def _fan_ins(net: Network) -> list[int]:
    return [net.graph.in_degree(j) for (j, _k) in net.w]


def alignment_over_training(model: Network | Problem, law: Law | LearningLaw | None = None,
                            *, steps: int = 240, every: int = 30, batch: int = 8,
                            lr: float = 0.1, probe: int = 64, gamma: float = 1.0,
                            seed: int = 0, teacher_scale: float = 2.0,
                            student_scale: float = 0.1,
                            values: Mapping[str, float] | None = None) -> AlignmentHistory:
    """Train a feedforward network with a law on a teacher-student stream and measure,
    per layer and every ``every`` steps, its update against the gradient.

    Parameters
    ----------
    model
        A feedforward network (its default problem: squared error of the outputs) or a
        problem built by ``Network.problem`` whose loss has the target signals
        ``y<o>``. The stream replaces the problem's own inputs and targets.
    law
        A :data:`~cognitive_action.verify.laws.Law` or
        :data:`~cognitive_action.verify.laws.LearningLaw` (default: the derived law).
    steps, every
        Training steps and the interval between measurements (step 0 and the last
        step are always measured).
    batch, lr
        Minibatch size and step size ``η`` of ``w ← w + η γ mean(Ẇ)``.
    probe
        Size of the fixed batch on which updates are compared.
    gamma
        ``γ`` of the weight law.
    seed
        Root of the four random streams (teacher, student, stream, probe).
    teacher_scale, student_scale
        ``s`` of the teacher's and the student's initial weights ``N(0, s²/fan_in)``.
        The student starts small, as in Lillicrap et al.: feedback alignment aligns
        when the learned part of ``W`` outweighs its random start; a teacher larger
        than the student keeps the error from vanishing before it has.
    values
        Parameters of the loss other than the targets, by name.

    Returns
    -------
    AlignmentHistory

    Raises
    ------
    DeclarationError
        If the network has cycles.
    UntrainableError
        If the loss names no target signal ``y<o>`` (a teacher could not set targets)
        or depends on the weights (no gradient reference here yet).
    """
    problem = model.problem() if isinstance(model, Network) else model
    net = network_of(problem)
    engine = derived_limit() if law is None else as_learning_law(law)
    name = getattr(engine, "__name__", "law") if law is not None else "derived"
    ev = LawEvaluator(problem)
    named = {str(s) for s in ev.others}
    targets = {o: s for o, s in net.target_signals().items() if str(s) in named}
    if not targets:
        raise UntrainableError("the loss names no target signal y<o>: a teacher cannot "
                               "set the targets", fix="keep the default squared error of "
                               "the outputs (targets y<o>) or write them in the loss")
    on_weights = sorted(str(s) for s in ev.others if str(s) in ev.weight_index)
    if on_weights:
        raise UntrainableError(f"the loss depends on the weights ({', '.join(on_weights[:3])}"
                               "...): the training reference differentiates V(x, y) only",
                               fix="judge the law at one state with backprop.numeric")
    inputs = net.input_signals()
    derived: list = []                        # the derived system, when a law needs it

    def system():
        if not derived:
            derived.append(derive_network(problem))
        return derived[0]

    r_teacher, r_student, r_stream, r_probe = (np.random.default_rng(s) for s in
                                                np.random.SeedSequence(seed).spawn(4))
    w_teacher = initialize(_fan_ins(net), scale=teacher_scale, rng=r_teacher)
    w = initialize(_fan_ins(net), scale=student_scale, rng=r_student)
    base = {str(dot(s, k)): 0.0 for s in problem.signals for k in (1, 2)}  # static
    base |= {str(k): float(v) for k, v in (values or {}).items()} | {"t": 0.0}
    out_idx = [net.order.index(o) for o in targets]
    student = _Student(net, ev, {str(s): i for i, s in enumerate(targets.values())}, base)
    n_in = len(net.inputs)

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        e = rng.standard_normal((n, n_in))
        return e, student.forward(w_teacher, e)[0][:, out_idx]

    e_probe, y_probe = draw(r_probe, probe)
    d = depths(net)
    layer_of = np.array([d[j] for (j, _k) in net.w])
    layers = tuple(sorted(set(layer_of.tolist())))
    masks = [layer_of == k for k in layers]

    def law_rates(w: np.ndarray, e: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Sum over the batch of the law's ``Ẇ`` (``net.w`` order)."""
        x, _ = student.forward(w, e)
        total = np.zeros(len(w))
        zero_w = np.zeros_like(w)
        for xs, es, ys in zip(x, e, y):
            vals = base | {str(inputs[j]): float(v) for j, v in zip(net.inputs, es)}
            vals |= {str(s): float(v) for s, v in zip(targets.values(), ys)}
            state = NetworkState(x=xs, x_dot=np.zeros_like(xs), w=w, w_dot=zero_w, t=0.0)
            if isinstance(engine, EngineLaw):
                given = ev.given(w, xs, vals, gamma,
                                 lambda s=state, v=vals: derived_rates(system(), s, v, gamma))
                total += ev.output(engine.law(given), name).w_dot
            else:
                total += np.asarray(engine(system(), state, vals, gamma).w_dot, dtype=float)
        return total

    marks = sorted({*range(0, steps, max(1, every)), steps})
    rows: list[list[metrics.LayerMetrics | None]] = []
    losses = []
    diverged = None
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite: checked below
        for step in range(steps + 1):
            if step in marks:
                a = law_rates(w, e_probe, y_probe)
                g, loss = student.gradient(w, e_probe, y_probe, gamma)
                if not (np.all(np.isfinite(a)) and np.all(np.isfinite(g))):
                    diverged = step
                    break
                rows.append([metrics.layer_metrics(a[m], g[m])
                             if np.any(g[m]) and np.any(a[m]) else None for m in masks])
                losses.append(loss)
            if step == steps:
                break
            e, y = draw(r_stream, batch)
            w = w + lr * gamma * law_rates(w, e, y) / batch
            if not np.all(np.isfinite(w)):
                diverged = step + 1
                break
    marks = marks[:len(rows)]

    def stack(attr: str) -> np.ndarray:
        return np.array([[float(getattr(m, attr)) if m is not None else np.nan for m in r]
                         for r in rows])

    return AlignmentHistory(
        law=name, steps=np.array(marks), layers=layers,
        weights=tuple(int(m.sum()) for m in masks), angle=stack("angle"),
        cosine=stack("cosine"), relative_error=stack("relative_error"),
        sign_agreement=stack("sign_agreement"), loss=np.array(losses),
        settings={"seed": seed, "steps": steps, "every": every, "batch": batch, "lr": lr,
                  "probe": probe, "gamma": gamma, "teacher_scale": teacher_scale,
                  "student_scale": student_scale, "diverged_at": diverged,
                  "neurons": len(net.order), "weights": len(net.w)})


def check_alignment(model: Network | Problem, law: Law | LearningLaw | None = None, *,
                    max_angle: float = 90.0, **training: Any) -> Check:
    """``alignment.training``: the law's update against the gradient along a training run.

    Passes when, at the end of the run, every layer's update is within ``max_angle``
    degrees of the gradient (below 90: a descent direction in every layer, the condition
    under which feedback alignment learns). This says the law *learns like* gradient
    descent, not that it *is* backprop (``backprop.numeric`` decides that); the details
    hold the per-layer table over time and the trend of each layer.

    Parameters
    ----------
    model, law
        As in :func:`alignment_over_training`.
    max_angle
        Largest final angle, in degrees, in any layer.
    **training
        Passed on to :func:`alignment_over_training` (``steps``, ``every``, ``seed``, ...).

    Returns
    -------
    Check
        ``skip`` (with the reason) for a network with cycles or a loss without targets.
    """
    name = "alignment.training"
    problem = model.problem() if isinstance(model, Network) else model
    if not isinstance(getattr(problem, "network", None), Network) or \
            not problem.network.is_feedforward:
        return Check(name, "skip", message="needs a feedforward network (a forward pass to "
                     "train through)")
    try:
        h = alignment_over_training(problem, law, **training)
    except UntrainableError as exc:
        return Check(name, "skip", message=exc.message)
    details = {"law": h.law, "layers": h.table(), "trend": h.trend() if len(h.steps) else [],
               "settings": h.settings}
    if h.settings["diverged_at"] is not None:
        return Check(name, "fail", None, max_angle,
                     f"{h.law}: the update or the weights are not finite at step "
                     f"{h.settings['diverged_at']} of the teacher-student run", details)
    final = h.angle[-1]
    defined = np.isfinite(final)
    worst = float(np.max(final[defined])) if defined.any() else float("nan")
    ok = bool(defined.any()) and worst < max_angle
    parts = []
    for r in h.trend():
        parts.append(f"layer {r['layer']} {r['angle_deg_first']:.3g} -> "
                     f"{r['angle_deg_last']:.3g} deg")
    msg = (f"{h.law}: angle to the gradient over {h.settings['steps']} SGD steps of a "
           f"teacher-student stream: {', '.join(parts)}; probe loss "
           f"{h.loss[0]:.3g} -> {h.loss[-1]:.3g}")
    if not ok:
        msg += f" (a layer ends at or beyond {max_angle:g} deg: not a descent direction)"
    return Check(name, "pass" if ok else "fail", worst, max_angle, msg, details)

