"""The continuous-time counterpart of backprop diffusion: neurons (18) with speed ``c``.

Section 2's time-delay model moves signals one layer per tick. Its continuous-time
counterpart is the non-holonomic neuron of eq. (18)-(19), ``ẋ/c + x − σ(a) = 0``: each
neuron relaxes toward ``σ(a)`` at rate ``c``, so a signal needs a time of order
``1/c`` per layer, and the multipliers of eq. (20) carry the error back. As ``c → ∞``
both waves become instantaneous and the diffusion estimate of the gradient becomes
backprop's. This module measures that convergence, with everything derived:

1. :func:`derive_diffusion` declares a layered network of neurons (19) with a symbolic
   speed ``c``, derives its Euler-Lagrange equations (:mod:`~cognitive_action.derive`),
   takes the leading-order ``m_x → 0`` limit (:func:`~cognitive_action.derive.limits.reduce`
   with :func:`~cognitive_action.derive.limits.quasi_static`: the neuron rows become the
   multiplier dynamics, the constraint rows the forward dynamics ``ẋ = c(σ(a) − x)``), and
   freezes the weights (``ẇ = ẅ = 0``: the weights are read, not learned, as in Figures
   1-3). The multiplier rates ``μ̇`` it derives are eq. (20) (with ``ϖ = 1``), which is
   anti-stable forward in time (``docs/verify.md``); the *relaxation* variant runs
   ``μ̇ → −μ̇``, the stable backward diffusion wave with the same equilibrium
   ``T μ = −V_x``.
2. The reduced rows, weights frozen (:func:`~cognitive_action.compile.reduced.freeze`), are
   compiled like any reduction (:func:`~cognitive_action.compile.reduced.compile_reduced`:
   the unknowns solved by a linear-solve node inside one CasADi function) and integrated
   with CVODES on an output grid.
3. The estimate of ``∂V/∂W`` at each time is the derived weight row's generalized force
   at rest, ``F_w`` (``γ ẇ = −F_w`` in the learning limit, eq. 14-15), evaluated on the
   simulated state; the reference is the gradient of the instantaneous loss through the
   forward pass at the same time, by CasADi AD
   (:func:`~cognitive_action.verify.reference.casadi_gradients`) — independent of the
   derivation.

Examples
--------
>>> d = derive_diffusion([1, 2, 1], frequency=0.5, seed=0)
>>> run = d.simulate(speed=50.0, t_end=4.0, n_points=41)
>>> bool(run.relative_error(t_from=2.0) < 0.1)
True
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import casadi
import numpy as np
import sympy as sp

from cognitive_action.declare import symbols as S
from cognitive_action.declare.initializers import initialize
from cognitive_action.declare.network import Network, layered
from cognitive_action.errors import DeclarationError, SimulationError
from cognitive_action.verify import metrics

if TYPE_CHECKING:
    from cognitive_action.compile.system import CompiledSystem

__all__ = ["ContinuousDiffusion", "DiffusionRun", "SpeedConvergence", "derive_diffusion",
           "speed_convergence"]

VARIANTS = ("relaxation", "forward", "adjoint")


@dataclass
class DiffusionRun:
    """One simulation of a :class:`ContinuousDiffusion` at a speed ``c``.

    Attributes
    ----------
    speed
        ``c``.
    times
        Output times.
    x, multipliers
        Neuron outputs and the non-holonomic multipliers ``μ`` (rows: times).
    estimate, reference
        ``∂V/∂W`` estimated from the multipliers (``F_w``) and by AD through the
        forward pass at the same times (rows: times; columns: ``weights``).
    weights
        Weight names, columns of ``estimate``.
    layers
        Layer index of each weight's target neuron (1 = first computing layer).
    variant
        ``"relaxation"`` (stable), ``"forward"`` (eq. 20 as derived) or ``"adjoint"``
        (eq. 20 backward from ``μ(T) = 0``).
    """

    speed: float
    times: np.ndarray
    x: np.ndarray
    multipliers: np.ndarray
    estimate: np.ndarray
    reference: np.ndarray
    weights: tuple[str, ...]
    layers: np.ndarray
    variant: str

    def _window(self, t_from: float | None) -> np.ndarray:
        t0 = self.times[0] if t_from is None else t_from
        keep = self.times >= t0
        if not keep.any():
            raise DeclarationError(f"no output time at or after t = {t0}",
                                   fix=f"use t_from <= {self.times[-1]}")
        return keep

    def relative_error(self, t_from: float | None = None) -> float:
        """Mean over times ``≥ t_from`` of ``|ĝ − g| / |g|`` over all weights."""
        k = self._window(t_from)
        return float(np.mean(metrics.relative_error(self.estimate[k], self.reference[k],
                                                    axis=1)))

    def layer_errors(self, t_from: float | None = None) -> dict[int, float]:
        """Mean relative error of each layer's weights over times ``≥ t_from``."""
        k = self._window(t_from)
        out = {}
        for layer in np.unique(self.layers):
            cols = self.layers == layer
            out[int(layer)] = float(np.mean(metrics.relative_error(
                self.estimate[k][:, cols], self.reference[k][:, cols], axis=1)))
        return out


@dataclass
class ContinuousDiffusion:
    """A layered network of neurons (18)-(19) with its derived, reduced dynamics.

    Built by :func:`derive_diffusion`; :meth:`simulate` runs it at a speed ``c``.
    """

    network: Network
    problem: object
    speed_symbol: sp.Symbol
    frequency: float
    weights_values: dict[str, float]
    rhs: casadi.Function          # (t, y, c) -> ẏ, forward (eq. 20 as derived)
    force: casadi.Function        # (t, y) -> F_w
    neurons: tuple[str, ...]
    multiplier_names: tuple[str, ...]
    weight_names: tuple[str, ...]
    weight_layers: np.ndarray
    system: CompiledSystem | None = field(default=None, repr=False)  # the compiled reduction
    _integrators: dict = field(default_factory=dict, repr=False)

    def initial_state(self, t0: float = 0.0) -> np.ndarray:
        """Forward pass and backprop multipliers at ``t0``: the rest state at ``c = ∞``."""
        from cognitive_action.verify.reference import casadi_gradients

        ref = casadi_gradients(self.problem, self._w(), {"t": t0})
        order = [str(x) for x in self.network.neurons]
        x0 = [ref.x[order.index(n)] for n in self.neurons]
        # the multiplier of neuron j's constraint G<j> starts at j's backprop delta
        nu0 = [ref.delta[order.index("x" + m.split("_G", 1)[1])]
               for m in self.multiplier_names]
        return np.array(x0 + nu0, dtype=float)

    def _w(self) -> np.ndarray:
        return np.array([self.weights_values[str(w)] for w in self.network.weights])

    def simulate(self, speed: float, *, t_end: float = 10.0, n_points: int = 201,
                 variant: str = "relaxation", rtol: float = 1e-9, atol: float = 1e-11,
                 max_norm: float = 1e8) -> DiffusionRun:
        """Integrate the reduced dynamics at ``c = speed`` and compare with backprop.

        Parameters
        ----------
        speed
            The diffusion speed ``c > 0``.
        t_end, n_points
            Output grid ``linspace(0, t_end, n_points)``.
        variant
            ``"relaxation"`` (default, stable), ``"forward"`` (the derived eq. 20,
            anti-stable: expect a :class:`~cognitive_action.errors.SimulationError`), or
            ``"adjoint"``: eq. (20) as derived, integrated backward in time from
            ``μ(t_end) = 0`` (:func:`~cognitive_action.compile.adjoint.adjoint_sweep`;
            the weights are frozen, so one sweep is exact). It anticipates where the
            relaxation lags, and leaves the backprop delta in a boundary layer of width
            ``~1/c`` before ``t_end``.
        rtol, atol
            CVODES tolerances.
        max_norm
            A state norm above this is a blow-up.

        Raises
        ------
        DeclarationError
            Bad speed, grid or variant.
        SimulationError
            Integrator failure or blow-up, with the time reached.
        """
        if not (np.isfinite(speed) and speed > 0):
            raise DeclarationError(f"speed c = {speed} must be a positive number",
                                   fix="use e.g. speed=20.0")
        if variant not in VARIANTS:
            raise DeclarationError(f"unknown variant {variant!r}",
                                   fix=f"use one of {', '.join(VARIANTS)}")
        if not (t_end > 0 and int(n_points) >= 2):
            raise DeclarationError(f"bad output grid t_end={t_end}, n_points={n_points}",
                                   fix="use t_end > 0 and n_points >= 2")
        grid = np.linspace(0.0, float(t_end), int(n_points))
        if variant == "adjoint":
            Y = self._adjoint(speed, grid, rtol, atol)
            return self._run(speed, grid, Y, variant)
        key = (variant, float(t_end), int(n_points), rtol, atol)
        if key not in self._integrators:
            tt = casadi.MX.sym("t")
            y = casadi.MX.sym("y", len(self.neurons) + len(self.multiplier_names))
            cc = casadi.MX.sym("c")
            ydot = self.rhs(tt, y, cc)
            if variant == "relaxation":
                n = len(self.neurons)
                ydot = casadi.vertcat(ydot[:n], -ydot[n:])
            dae = {"t": tt, "x": y, "p": cc, "ode": ydot}
            self._integrators[key] = casadi.integrator(
                "diffusion", "cvodes", dae, 0.0, grid[1:],
                {"abstol": atol, "reltol": rtol, "max_num_steps": 200_000})
        y0 = self.initial_state(0.0)
        try:
            out = self._integrators[key](x0=y0, p=float(speed))
        except RuntimeError as exc:
            found = re.search(r"At t = ([-+0-9.eE]+)", str(exc))
            raise SimulationError(
                f"the {variant} diffusion dynamics failed to integrate at c = {speed}"
                + (f" (CVODES stopped at t = {found.group(1)})" if found else ""),
                fix="use variant='relaxation' (eq. 20 forward is anti-stable)"
                if variant == "forward" else "loosen rtol/atol or shorten t_end",
                time=float(found.group(1)) if found else None) from None
        Y = np.column_stack([y0, np.asarray(out["xf"])]).T
        bad = ~np.isfinite(Y).all(axis=1) | (np.linalg.norm(Y, axis=1) > max_norm)
        if bad.any():
            i = int(np.argmax(bad))
            raise SimulationError(f"the state blew up by t = {grid[i]:.4g} at c = {speed}",
                                  fix="use variant='relaxation'", time=float(grid[i]),
                                  state_norm=float(np.linalg.norm(Y[i])))
        return self._run(speed, grid, Y, variant)

    def _adjoint(self, speed: float, grid: np.ndarray, rtol: float, atol: float
                 ) -> np.ndarray:
        from cognitive_action.compile.adjoint import adjoint_sweep

        if self.system is None:  # pragma: no cover - derive_diffusion always sets it
            raise DeclarationError("this model has no compiled system for the adjoint sweep",
                                   fix="build it with derive_diffusion")
        params = dict(self.weights_values) | {"c": float(speed)}
        # fixed-step RK on an internal grid with c·h ≤ 0.2 (Hermite interpolation error
        # ~ (c h)⁴/384 ≈ 4e-6 relative): at c = 80 the sweep's own default (c h ≤ 0.05)
        # gives the same trajectory to 1e-14 in 4.7× the time
        substeps = max(2, math.ceil(float(speed) * float(np.diff(grid).max()) / 0.2))
        run = adjoint_sweep(self.system, grid, self.initial_state(0.0), params, method="rk",
                            substeps=substeps, rtol=rtol, atol=atol, check_initial=False)
        return run.y

    def _run(self, speed: float, grid: np.ndarray, Y: np.ndarray, variant: str
             ) -> DiffusionRun:
        from cognitive_action.verify.reference import casadi_gradients

        n = len(self.neurons)
        est = np.vstack([np.asarray(self.force(ti, yi)).ravel() for ti, yi in zip(grid, Y)])
        w = self._w()
        ref = np.vstack([casadi_gradients(self.problem, w, {"t": float(ti)}).grad_w
                         for ti in grid])
        return DiffusionRun(float(speed), grid, Y[:, :n], Y[:, n:], est, ref,
                            self.weight_names, self.weight_layers, variant)


def derive_diffusion(sizes: Sequence[int], *, frequency: float = 0.5,
                     amplitude: float = 1.0, target: float = 0.5,
                     activation: str = "tanh", seed: int = 0, weight_scale: float = 1.0,
                     init: str = "normal_fan_in") -> ContinuousDiffusion:
    """Derive the reduced dynamics of a layered network of neurons (18)-(19).

    Parameters
    ----------
    sizes
        Layer sizes (``sizes[0]`` inputs), as in :func:`~cognitive_action.declare.network.layered`.
    frequency
        Angular frequency ``ω`` of the inputs ``u_i(t) = A sin(ω t + φ_i)`` (phases
        spread over the inputs).
    amplitude, target
        ``A`` and the constant target of every output.
    activation
        ``tanh``, ``logistic``, ``identity`` or ``softplus``.
    seed, weight_scale, init
        Frozen weights drawn by the initialiser ``init`` of
        :mod:`cognitive_action.declare.initializers` (default ``w ~ N(0, scale²/fan_in)``).

    Returns
    -------
    ContinuousDiffusion
    """
    from cognitive_action.compile.reduced import compile_reduced, freeze
    from cognitive_action.compile.translate import to_casadi
    from cognitive_action.derive.euler_lagrange import euler_lagrange
    from cognitive_action.derive.limits import quasi_static, reduce

    if not (np.isfinite(frequency) and frequency >= 0):
        raise DeclarationError(f"frequency {frequency} must be a non-negative number",
                               fix="use e.g. frequency=0.5")
    c, = S.parameters("c")
    net = layered(list(sizes), activation, speed=c)
    n_in = len(net.inputs)
    inputs = {i: amplitude * sp.sin(frequency * S.t + sp.pi * k / max(1, n_in))
              for k, i in enumerate(net.inputs)}
    problem = net.problem(inputs=inputs, targets={o: target for o in net.outputs},
                          parameters=[c])
    el = euler_lagrange(problem)
    red = reduce(el, quasi_static())

    drawn = initialize([net.graph.in_degree(j) for (j, _k) in net.w], init,
                       scale=weight_scale, rng=seed)
    wvals = {str(w): float(v) for w, v in zip(net.w.values(), drawn)}
    weights = set(net.weights)
    frozen = {S.dot(w): 0 for w in weights} | {S.dot(w, 2): 0 for w in weights}
    # the reduced rows with the weights read, not learned, compiled like any reduction
    system = compile_reduced(freeze(red, list(net.weights)), problem=problem)
    neurons = tuple(str(x) for x in net.neurons)
    mults = system.states[len(neurons):]
    expected = tuple(str(red.multiplier_of(c.name))
                     for c in problem.nonholonomic_constraints)
    if system.states[:len(neurons)] != neurons or tuple(mults) != expected:  # pragma: no cover
        raise DeclarationError(f"unexpected states of the reduced system: {system.states}",
                               fix="report this: the m_x -> 0 reduction changed")
    tt = casadi.MX.sym("t")
    y = casadi.MX.sym("y", system.n_states)
    cc = casadi.MX.sym("c")
    p = casadi.vertcat(*[cc if name == "c" else wvals[name] for name in system.parameters],
                       0.0, 0.0)  # no Baumgarte gains
    rhs = casadi.Function("diffusion_rhs", [tt, y, cc], [system.rhs(tt, y, p)])
    values: dict[str, object] = {"t": tt, "c": cc} | dict(wvals)
    values |= {n: y[i] for i, n in enumerate(neurons)}
    values |= {m: y[len(neurons) + i] for i, m in enumerate(mults)}
    # The estimate: each weight row's generalized force at rest, F_w (γ ẇ = −F_w).
    at_rest = {lab: red.equations[i].xreplace(frozen)
               for i, lab in enumerate(red.labels) if lab in weights}
    wnames = tuple(str(w) for w in net.weights)
    force = casadi.vertcat(*to_casadi([at_rest[w] for w in net.weights], values))
    depth = {j: d for d, layer in enumerate(_layers(sizes)) for j in layer}
    layers = np.array([depth[j] for (j, _k) in net.w])
    return ContinuousDiffusion(
        network=net, problem=problem, speed_symbol=c, frequency=float(frequency),
        weights_values=wvals, rhs=rhs, system=system,
        force=casadi.Function("diffusion_force", [tt, y], [force]), neurons=neurons,
        multiplier_names=mults, weight_names=wnames, weight_layers=layers)


def _layers(sizes: Sequence[int]) -> list[list[int]]:
    out, k = [], 1
    for s in sizes:
        out.append(list(range(k, k + int(s))))
        k += int(s)
    return out


@dataclass
class SpeedConvergence:
    """Errors of the diffusion estimate against ``c``, with the fitted order."""

    speeds: np.ndarray
    errors: np.ndarray
    layer_errors: dict[int, np.ndarray]
    fit: metrics.OrderFit
    runs: list[DiffusionRun]

    def table(self) -> str:
        """A plain-text table: ``c``, overall and per-layer relative errors."""
        layers = sorted(self.layer_errors)
        head = "c        error     " + "  ".join(f"layer {k:<4}" for k in layers)
        lines = [head]
        for i, c in enumerate(self.speeds):
            lines.append(f"{c:<8.4g} {self.errors[i]:<9.3e} " + "  ".join(
                f"{self.layer_errors[k][i]:<10.3e}" for k in layers))
        lines.append(f"order {self.fit.order:.3f} ({self.fit.confidence:.0%} CI "
                     f"[{self.fit.ci[0]:.3f}, {self.fit.ci[1]:.3f}], R^2 "
                     f"{self.fit.r_squared:.4f})")
        return "\n".join(lines)


def speed_convergence(model: ContinuousDiffusion, speeds: Sequence[float], *,
                      t_end: float = 10.0, t_from: float | None = None, n_points: int = 201
                      ) -> SpeedConvergence:
    """Simulate at each speed and fit ``error ~ C c^{-p}``.

    The error is the mean relative error of the estimate over ``t ≥ t_from`` (default
    ``t_end/2``, after the start-up transient). The order is fitted against ``1/c`` (so
    ``p > 0`` means convergence as ``c → ∞``).
    """
    speeds_ = np.asarray(list(speeds), dtype=float)
    if speeds_.size < 3:
        raise DeclarationError("a convergence order needs at least three speeds",
                               fix="pass e.g. speeds=(10, 20, 40, 80)")
    t0 = t_end / 2 if t_from is None else t_from
    runs = [model.simulate(c, t_end=t_end, n_points=n_points) for c in speeds_]
    errors = np.array([r.relative_error(t0) for r in runs])
    per = [r.layer_errors(t0) for r in runs]
    layer_errors = {k: np.array([p[k] for p in per]) for k in per[0]}
    fit = metrics.convergence_order(1.0 / speeds_, errors)
    return SpeedConvergence(speeds_, errors, layer_errors, fit, runs)


def convergence_figure(conv: SpeedConvergence, path) -> object:
    """Save a two-panel figure: error against ``c`` per layer (log-log, with the fitted
    order), and one weight's estimate against backprop over time at the slowest and
    fastest speeds. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for k in sorted(conv.layer_errors):
        ax1.loglog(conv.speeds, conv.layer_errors[k], "o-", label=f"layer {k}")
    ax1.loglog(conv.speeds, conv.errors, "ks--", label="all weights")
    guide = conv.errors[0] * (conv.speeds[0] / conv.speeds)
    ax1.loglog(conv.speeds, guide, ":", color="gray", label="slope -1")
    ax1.set_xlabel("diffusion speed c")
    ax1.set_ylabel("mean relative error of the estimate")
    ax1.set_title(f"estimate → backprop as c → ∞: order {conv.fit.order:.2f} "
                  f"[{conv.fit.ci[0]:.2f}, {conv.fit.ci[1]:.2f}]", fontsize=10)
    ax1.legend(fontsize=8)
    last = conv.runs[-1]
    col = int(np.argmax(np.abs(last.reference).mean(axis=0)))
    ax2.plot(last.times, last.reference[:, col], "k-", lw=2, label="backprop (AD)")
    for r in (conv.runs[0], conv.runs[-1]):
        ax2.plot(r.times, r.estimate[:, col], "--", label=f"diffusion, c = {r.speed:g}")
    ax2.set_xlabel("t")
    ax2.set_ylabel(f"∂V/∂{last.weights[col]}")
    ax2.set_title("one weight's gradient over time", fontsize=10)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
