"""Predictive coding as a learning law, and the checks of its two published claims.

Whittington & Bogacz (2017): at the inference equilibrium of a predictive coding
network, the weight update ``−∂F/∂W`` divided by the precision ``β`` of the output
error tends to the backprop update ``−∂V̄/∂W`` as ``β → 0``. The error is ``O(β)``:
the equilibrium is analytic in ``β``, the error units are ``ε_j = β δ_j + O(β²)``
(``δ`` the backprop deltas: at first order in ``β`` the value units feel the output
error through the linearised network only), and the update is linear in them.

Song et al. (2020), Millidge et al. (2022): with the predictions and their derivatives
held at the feedforward pass, inference steps of size 1 and one sweep per layer, the
error units *are* ``β δ_j`` and the update equals backprop (at any ``β``, to
round-off).

:func:`predictive_coding` is the law in the public protocol (registered as
``"predictive_coding"`` and ``"predictive_coding_fixed_prediction"``), and
:func:`check_predictive_coding` measures the two claims against CasADi AD
(:func:`~cognitive_action.verify.reference.casadi_gradients`, independent of the
predictive coding derivation): ``pc.precision_limit`` (the fitted order in ``β``, with
its interval, by :func:`~cognitive_action.verify.asymptotic.search_order`) and
``pc.fixed_prediction`` (relative error at most ``1e-12``). The verifier runs them for
a problem file whose ``[verify] law`` is a predictive coding law.

Examples
--------
>>> import cognitive_action as ca
>>> checks = check_predictive_coding(ca.layered([3, 4, 2]).problem())
>>> [(c.name, c.status) for c in checks]
[('pc.precision_limit', 'pass'), ('pc.fixed_prediction', 'pass')]
>>> round(checks[0].value, 2)                      # the fitted order in beta
1.0
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from cognitive_action.compile.predictive_coding import (
    CompiledPredictiveCoding,
    compile_predictive_coding,
)
from cognitive_action.declare.network import Network
from cognitive_action.declare.predictive_coding import PRECISION, PredictiveCoding
from cognitive_action.declare.problem import Problem
from cognitive_action.errors import CognitiveActionError, DeclarationError
from cognitive_action.verify import metrics
from cognitive_action.verify.asymptotic import order_check, search_order
from cognitive_action.verify.laws import EngineLaw, LawInput, LawRates
from cognitive_action.verify.reference import (
    casadi_gradients,
    input_values,
    loss_of,
    network_of,
    random_sample,
)
from cognitive_action.verify.report import Check

__all__ = ["PredictiveCodingLaw", "predictive_coding", "check_predictive_coding",
           "pc_model"]


def pc_model(problem: Problem) -> PredictiveCoding:
    """The predictive coding network of a feedforward network problem: its network, its
    loss evaluated at the output predictions, the precision :data:`PRECISION`.

    Raises
    ------
    DeclarationError
        If the problem's loss names anything but the outputs, their targets and the
        problem's parameters (a loss of the weights), or the network does not fit
        (:class:`~cognitive_action.declare.predictive_coding.PredictiveCoding`).
    """
    net = network_of(problem)
    if PRECISION in set(problem.parameters):
        raise DeclarationError(f"the problem already has a parameter named {PRECISION}",
                               fix="rename it: predictive coding uses beta for the "
                               "precision of the output error")
    loss = loss_of(problem)
    used = [p for p in problem.parameters if p in loss.free_symbols]
    return PredictiveCoding(net, loss=loss, parameters=used, name=problem.name)


class PredictiveCodingLaw(EngineLaw):
    """A predictive coding law in the engine form, with the checks of its claims
    (:meth:`extra_checks`, run by :func:`~cognitive_action.verify.checks.verify`)."""

    def extra_checks(self, problem: Problem, *, seed: int = 0, gamma: float = 1.0,
                     values: Mapping[str, float] | None = None) -> list[Check]:
        """``pc.precision_limit`` and ``pc.fixed_prediction`` on ``problem``
        (:func:`check_predictive_coding`)."""
        return check_predictive_coding(problem, seed=seed, values=values)


def predictive_coding(precision: float = 1e-3, *, fixed_prediction: bool = False,
                      seed: int = 0) -> PredictiveCodingLaw:
    """Predictive coding (Whittington & Bogacz 2017) as a learning law, for networks
    with the squared error of their outputs.

    At each state the network's value units relax to the inference equilibrium of the
    energy ``F = Σ_hidden ½ε² + β V`` (or, with ``fixed_prediction``, run one sweep
    per layer with the predictions held at the feedforward pass) and the law returns
    the weight update ``Ẇ = −∂F/∂W / (β γ)`` and the deltas ``δ_j = −∂F/∂μ_j / β``
    (the precision-weighted error units; for clamped inputs ``−∂F/∂x_j / β``). Both
    tend to backprop's as ``β → 0``; under fixed predictions they equal them.

    Parameters
    ----------
    precision
        ``β``, the precision of the output error.
    fixed_prediction
        Hold the predictions at the feedforward pass (Song et al. 2020).
    seed
        Unused (the law has no random part); the registry passes it.

    Raises
    ------
    DeclarationError
        When called on a state whose output error is not the squared error's ``y − x``
        (declare ``PredictiveCoding(net, loss=...)`` and use
        :func:`check_predictive_coding` for other losses), or on a network predictive
        coding cannot be declared on.
    """
    if isinstance(precision, bool) or not (np.isfinite(precision) and precision > 0):
        raise DeclarationError(f"the precision {precision!r} is not a positive number",
                               fix="pass e.g. precision=1e-3")
    beta = float(precision)
    compiled: dict[int, tuple[Network, CompiledPredictiveCoding, list, list]] = {}

    def law(given: LawInput) -> LawRates:
        net = given.network
        hit = compiled.get(id(net))
        if hit is None or hit[0] is not net:
            cpc = compile_predictive_coding(PredictiveCoding(net))
            signals = set(cpc.signals)
            inputs = [(i, str(e)) for i, e in cpc.model.inputs.items() if str(e) in signals]
            targets = [(o, str(y)) for o, y in cpc.model.targets.items()]
            hit = compiled[id(net)] = (net, cpc, inputs, targets)
        cpc, inputs, targets = hit[1:]
        vals: dict[str, float] = {str(PRECISION): beta}
        for i, name in inputs:
            vals[name] = float(given.x[i])
        given_targets = given.targets
        for o, name in targets:
            implied = given.x[o] + given.error[o]           # y = x + (-∂V/∂x) if squared
            if o in given_targets and not np.isclose(given_targets[o], implied,
                                                     rtol=1e-9, atol=1e-12):
                raise DeclarationError(
                    "the registered predictive coding law uses the squared error of the "
                    f"outputs, but the error at output {o!r} is not y - x",
                    fix="declare PredictiveCoding(net, loss=...) and judge it with "
                    "verify.predictive_coding.check_predictive_coding")
            vals[name] = float(given_targets.get(o, implied))
        w = np.array([given.weights[k, j] for (j, k) in net.w])
        st = cpc.fixed_prediction(w, vals) if fixed_prediction else cpc.equilibrium(w, vals)
        delta: dict[Hashable, float] = {}
        for i, j in enumerate(cpc.units):
            if j in net.inputs:
                delta[j] = float(st.value_rates[i]) / beta
        for i, j in enumerate(cpc.computing):
            delta[j] = float(st.weighted_errors[i]) / beta
        rates = st.weight_rates / (beta * given.gamma)
        w_dot = {(k, j): float(rates[n]) for n, (j, k) in enumerate(net.w)}
        return LawRates(delta={j: delta[j] for j in net.order},
                        w_dot={a: w_dot[a] for a in given.weights})
    name = ("predictive_coding_fixed_prediction" if fixed_prediction
            else f"predictive_coding(precision={beta:g})")
    law.__name__ = name
    return PredictiveCodingLaw(law, name)


def _state(problem: Problem, seed: int, values: Mapping[str, float] | None
           ) -> tuple[np.ndarray, dict[str, float]]:
    w, vals = random_sample(problem, seed=seed, values=values)
    net = problem.network
    for j, v in input_values(problem, vals).items():
        if j in net.input_signals():
            vals[str(net.input_signals()[j])] = v
    return w, vals


def check_predictive_coding(model: Network | Problem, *, seed: int = 0,
                            values: Mapping[str, float] | None = None,
                            order_tol: float = 0.1, rtol: float = 1e-12,
                            initial: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)
                            ) -> list[Check]:
    """The two claims of predictive coding at a random state, against CasADi AD.

    ``pc.precision_limit``: the relative error ``‖Ẇ_PC/β − (−∂V̄/∂W)‖ / ‖∂V̄/∂W‖`` at the
    inference equilibrium, measured toward ``β → 0`` until its fitted order is stable;
    passes when ``|order − 1| ≤ order_tol`` (expected 1, see the module docstring).
    ``pc.fixed_prediction``: the same error of the fixed-prediction schedule at ``β =
    1``; passes when at most ``rtol`` (backprop to round-off). The per-layer metrics of
    both are in ``details``.

    Parameters
    ----------
    model
        A feedforward network (its default problem) or a problem built by
        ``Network.problem``; its loss may name the outputs, targets and parameters.
    seed
        Seed of the random weights (``N(0, 1/fan_in)``) and signals (``N(0, 1)``).
    values
        Numbers for signals and parameters (override the random ones).
    order_tol, rtol
        Tolerances of the two checks.
    initial
        The first values of ``β`` (continued geometrically until the order is stable).

    Returns
    -------
    list of Check
        Both ``skip`` with the reason when predictive coding cannot be declared on the
        problem (cycles, a loss of the weights, outputs with outgoing arcs, ...).
    """
    problem = model.problem() if isinstance(model, Network) else model
    names = ("pc.precision_limit", "pc.fixed_prediction")
    try:
        cpc = compile_predictive_coding(pc_model(problem))
    except CognitiveActionError as exc:
        msg = getattr(exc, "message", str(exc))
        return [Check(n, "skip", message=f"predictive coding does not apply: {msg}",
                      details={"skipped": "not applicable"}) for n in names]
    net = problem.network
    w, vals = _state(problem, seed, values)
    ref = -casadi_gradients(problem, w, vals).grad_w
    scale = float(np.linalg.norm(ref))
    if scale == 0.0:
        return [Check(n, "skip", message="the gradient is 0 at the random state",
                      details={"skipped": "not applicable"}) for n in names]
    beta = str(PRECISION)

    def error_at(b: float) -> float:
        st = cpc.equilibrium(w, vals | {beta: b})
        return float(np.linalg.norm(st.weight_rates / b - ref)) / scale

    search = search_order(error_at, initial)
    layers = _per_layer(net, cpc.equilibrium(w, vals | {beta: float(search.parameters[-1])})
                        .weight_rates / float(search.parameters[-1]), ref)
    limit = order_check(names[0], search, expected=1.0, order_tol=order_tol,
                        what="predictive coding at the inference equilibrium -> backprop "
                        "(W&B 2017)", parameter="beta",
                        details={"layers_at_smallest_beta": layers, "seed": seed})
    st = cpc.fixed_prediction(w, vals | {beta: 1.0})
    err = float(np.linalg.norm(st.weight_rates - ref)) / scale
    exact = Check(names[1], "pass" if err <= rtol else "fail", err, rtol,
                  f"fixed predictions, step 1, {cpc.depth} sweep(s) (one per layer): "
                  f"|dW_PC - dW_BP|/|dW_BP| = {err:.2g} at beta = 1",
                  {"layers": _per_layer(net, st.weight_rates, ref), "sweeps": cpc.depth,
                   "seed": seed})
    return [limit, exact]


def _per_layer(net: Network, a: np.ndarray, g: np.ndarray) -> list[dict[str, Any]]:
    from cognitive_action.verify.reference import depths

    d = depths(net)
    layer_of = np.array([d[j] for (j, _k) in net.w])
    out = []
    for k in sorted(set(layer_of.tolist())):
        m = layer_of == k
        if not np.any(g[m]):
            continue
        lm = metrics.layer_metrics(a[m], g[m])
        out.append({"layer": int(k), "weights": int(m.sum()),
                    "relative_error": float(lm.relative_error),
                    "angle_deg": float(lm.angle), "cosine": float(lm.cosine)})
    return out
