"""Predictive coding compiled with CasADi: inference to equilibrium, fixed-prediction
sweeps, the weight update.

:func:`compile_predictive_coding` translates the derived local forms
(:mod:`cognitive_action.derive.predictive_coding`) into CasADi functions of the value
units ``x`` (every unit that is not an output: inputs clamped, hidden free), the
prediction units ``μ``, the point ``x_J`` the predictions' derivatives are taken at, the
weights, the signals and the parameters. Three ways to run inference share them:

- :meth:`CompiledPredictiveCoding.equilibrium`: the fixed point of ``ẋ = −∂F/∂x`` with
  ``μ = μ(x)`` and ``x_J = x``, by Newton's method (CasADi ``rootfinder``) from the
  feedforward pass — the state inference relaxes to;
- :meth:`CompiledPredictiveCoding.relax`: the published algorithm, explicit Euler steps
  ``x ← x + η ẋ`` (its limit is the equilibrium above);
- :meth:`CompiledPredictiveCoding.fixed_prediction`: the predictions and their
  Jacobian held at the feedforward pass, ``η = 1``, one sweep per layer (Song et al.
  2020, Millidge et al. 2022 "Z-IL"/"fixed prediction").

Examples
--------
>>> import numpy as np
>>> from cognitive_action.declare.network import chain
>>> from cognitive_action.declare.predictive_coding import PredictiveCoding
>>> cpc = compile_predictive_coding(PredictiveCoding(chain(3)))
>>> vals = {"e1": 1.0, "y3": 0.2, "beta": 1e-3}
>>> w = np.array([0.5, -1.0])                        # net.weights order: w2_1, w3_2
>>> st = cpc.equilibrium(w, vals)
>>> bool(np.max(np.abs(st.value_rates[st.free])) < 1e-12)   # ẋ = 0 at equilibrium
True
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import casadi as ca
import networkx as nx
import numpy as np

from cognitive_action.compile.translate import Translator
from cognitive_action.declare.predictive_coding import PredictiveCoding
from cognitive_action.derive.predictive_coding import (
    PredictiveCodingSystem,
    derive_predictive_coding,
)
from cognitive_action.errors import CompileError, DeclarationError

__all__ = ["CompiledPredictiveCoding", "PCState", "compile_predictive_coding"]


@dataclass(frozen=True)
class PCState:
    """A state of inference and the weight update there.

    Attributes
    ----------
    x
        Value units that are not outputs, in :attr:`CompiledPredictiveCoding.units`
        order (inputs clamped).
    mu
        Predictions of every non-input neuron (``network.computing`` order).
    x_lin
        Where the predictions' derivatives were taken (``x`` at equilibrium, the
        feedforward pass under fixed predictions).
    value_rates
        ``ẋ = −∂F/∂x`` (local form) at this state, for every unit in ``x``.
    weight_rates
        ``Ẇ = −∂F/∂W``, ``network.weights`` order.
    weighted_errors
        ``−∂F/∂μ_j``: the precision-weighted error units (``ε_j`` hidden, ``β ε_o``
        outputs).
    free
        Boolean mask of the free (hidden) units in ``x``.
    iterations
        Newton iterations or inference steps used.
    """

    x: np.ndarray
    mu: np.ndarray
    x_lin: np.ndarray
    value_rates: np.ndarray
    weight_rates: np.ndarray
    weighted_errors: np.ndarray
    free: np.ndarray
    iterations: int


class CompiledPredictiveCoding:
    """CasADi functions of a derived predictive coding network.

    Parameters
    ----------
    system
        The derived system.
    tol
        Absolute tolerance of Newton's method on ``ẋ = 0``.

    Attributes
    ----------
    units
        The neurons whose value units are states (inputs, then hidden, network order).
    signals, parameters
        Names of the signals (``e``, ``y``) and parameters (``beta``, ...) the functions
        take, in order.
    """

    def __init__(self, system: PredictiveCodingSystem, *, tol: float = 1e-13) -> None:
        m = system.model
        net = m.network
        self.system, self.model, self.network = system, m, net
        outs = set(net.outputs)
        self.units: tuple[Hashable, ...] = tuple(j for j in net.order if j not in outs)
        self.computing = net.computing
        self.free = np.array([j not in net.inputs for j in self.units], dtype=bool)
        self.signals = tuple(str(s) for s in m.signals)
        self.parameters = tuple(str(p) for p in m.parameters)
        self.tol = tol
        nu, nc, nw = len(self.units), len(self.computing), len(net.weights)
        X, XJ = ca.SX.sym("x", nu), ca.SX.sym("x_lin", nu)
        MU, W = ca.SX.sym("mu", nc), ca.SX.sym("w", nw)
        S, P = ca.SX.sym("s", len(self.signals)), ca.SX.sym("p", len(self.parameters))
        consts = {n: S[i] for i, n in enumerate(self.signals)}
        consts |= {n: P[i] for i, n in enumerate(self.parameters)}
        wv = {str(w): W[i] for i, w in enumerate(net.weights)}
        xv = {str(net.x[j]): X[i] for i, j in enumerate(self.units)}
        xjv = {str(net.x[j]): XJ[i] for i, j in enumerate(self.units)}
        muv = {str(m.predictions[j]): MU[i] for i, j in enumerate(self.computing)}
        at_state = Translator(consts | xv | muv)       # ∂F/∂x, ∂F/∂μ: at (x, μ)
        at_lin = Translator(consts | xjv | wv)         # ∂μ/∂x, ∂μ/∂w: at x_lin
        dfdx = [at_state(system.grad_x[net.x[j]]) for j in self.units]
        dfdmu = [at_state(system.grad_mu[m.predictions[j]]) for j in self.computing]
        row = {j: i for i, j in enumerate(self.computing)}
        owner_mu = {s: j for j, s in m.predictions.items()}
        owner_x = {s: j for j, s in net.x.items()}
        col = {j: i for i, j in enumerate(self.units)}
        xdot = [-v for v in dfdx]
        for (mu, xk), d in system.dmu_dx.items():
            i = row[owner_mu[mu]]
            xdot[col[owner_x[xk]]] -= dfdmu[i] * at_lin(d)
        wpos = {w: i for i, w in enumerate(net.weights)}
        wdot = [ca.SX(0)] * nw
        for (mu, w), d in system.dmu_dw.items():
            wdot[wpos[w]] = -dfdmu[row[owner_mu[mu]]] * at_lin(d)
        predict = Translator(xv | wv | consts).many(
            [m.prediction_exprs[m.predictions[j]] for j in self.computing])
        energy = at_state(m.energy)
        self._rates = ca.Function("pc_rates", [X, MU, XJ, W, S, P],
                                  [ca.vertcat(*xdot), ca.vertcat(*wdot),
                                   -ca.vertcat(*dfdmu)],
                                  ["x", "mu", "x_lin", "w", "s", "p"],
                                  ["x_dot", "w_dot", "weighted_errors"])
        self._predict = ca.Function("pc_predict", [X, W, S, P], [ca.vertcat(*predict)])
        self._energy = ca.Function("pc_energy", [X, MU, S, P], [energy])
        # feedforward pass: each hidden unit takes its prediction, in network order
        vals = [X[i] if not self.free[i] else None for i in range(nu)]
        for i, j in enumerate(self.units):
            if self.free[i]:
                sub = ca.vertcat(*[v if v is not None else ca.SX(0) for v in vals])
                vals[i] = ca.substitute(predict[row[j]], X, sub)
        self._forward = ca.Function("pc_forward", [X, W, S, P], [ca.vertcat(*vals)])
        # equilibrium: Newton on the free units' rates with μ = μ(x), x_lin = x
        free_idx = np.flatnonzero(self.free)
        Z = ca.SX.sym("z", len(free_idx))
        full = [X[i] for i in range(nu)]
        for k, i in enumerate(free_idx):
            full[i] = Z[k]
        Xz = ca.vertcat(*full) if full else ca.SX(0, 1)
        mu_z = self._predict(Xz, W, S, P)
        res = self._rates(Xz, mu_z, Xz, W, S, P)[0][free_idx.tolist()] if len(free_idx) \
            else ca.SX(0, 1)
        self._free_idx = free_idx
        if len(free_idx):
            g = ca.Function("pc_residual", [Z, X, W, S, P], [res])
            self._jac = ca.Function("pc_residual_jacobian", [Z, X, W, S, P],
                                    [res, ca.jacobian(res, Z)])
            self._newton = ca.rootfinder("pc_equilibrium", "newton", g,
                                         {"abstol": tol, "abstolStep": 1e-16,
                                          "max_iter": 100, "error_on_fail": False})
        else:
            self._newton = None
        self.depth = _sweeps_needed(net)

    # -- numbers in --------------------------------------------------------------------
    def _inputs(self, w: np.ndarray, values: Mapping[str, float]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        w = np.asarray(w, dtype=float).ravel()
        if w.shape != (len(self.network.weights),):
            raise DeclarationError(f"{w.size} weights for {len(self.network.weights)}",
                                   fix="give one weight per arc, in network.weights order")
        missing = [n for n in (*self.signals, *self.parameters) if n not in values]
        if missing:
            raise DeclarationError(f"no value given for {', '.join(missing)}",
                                   fix="pass the inputs e<i>, the targets y<o> and the "
                                   "precision by name")
        s = np.array([float(values[n]) for n in self.signals])
        p = np.array([float(values[n]) for n in self.parameters])
        x0 = np.zeros(len(self.units))
        for i, j in enumerate(self.units):
            if not self.free[i]:
                e = self.model.inputs[j]
                x0[i] = float(values[str(e)]) if str(e) in values else float(e)
        return w, s, p, x0

    def _state(self, x: np.ndarray, mu: np.ndarray, xl: np.ndarray, w: np.ndarray,
               s: np.ndarray, p: np.ndarray, iterations: int) -> PCState:
        xd, wd, we = (np.asarray(v, dtype=float).ravel()
                      for v in self._rates(x, mu, xl, w, s, p))
        return PCState(x=x, mu=mu, x_lin=xl, value_rates=xd, weight_rates=wd,
                       weighted_errors=we, free=self.free, iterations=iterations)

    # -- inference ---------------------------------------------------------------------
    def forward(self, w: np.ndarray, values: Mapping[str, float]) -> np.ndarray:
        """The feedforward pass: every hidden value equals its prediction (all error
        units of hidden neurons 0), in :attr:`units` order."""
        w, s, p, x0 = self._inputs(w, values)
        return np.asarray(self._forward(x0, w, s, p), dtype=float).ravel()

    def predict(self, x: np.ndarray, w: np.ndarray, values: Mapping[str, float]
                ) -> np.ndarray:
        """The predictions ``μ`` of the values ``x``."""
        w, s, p, _ = self._inputs(w, values)
        return np.asarray(self._predict(x, w, s, p), dtype=float).ravel()

    def energy(self, x: np.ndarray, w: np.ndarray, values: Mapping[str, float]) -> float:
        """``F`` at the values ``x`` with their own predictions."""
        w, s, p, _ = self._inputs(w, values)
        return float(self._energy(x, self._predict(x, w, s, p), s, p))

    def equilibrium(self, w: np.ndarray, values: Mapping[str, float], *,
                    max_descent: int = 500) -> PCState:
        """The inference equilibrium ``ẋ = 0`` reached from the feedforward pass, and the
        weight update there.

        Newton's method from the feedforward pass first; it is kept when it converges
        to a point of lower energy than the start (inference is a descent of ``F``). If
        not (a large precision can make ``F`` non-convex, and Newton may then overshoot
        or stop at a saddle), the value units descend ``F`` from the feedforward pass by
        damped Newton steps ``(H + λI) Δx = ẋ`` (``H`` the Hessian of ``F``, ``λ`` raised
        until ``F`` falls: a gradient step when ``λ`` is large), at most ``max_descent``
        of them, and Newton polishes the point reached.

        Raises
        ------
        CompileError
            If neither reaches ``|ẋ| ≤ tol`` (relative to the values' scale).
        """
        w, s, p, x0 = self._inputs(w, values)
        xf = np.asarray(self._forward(x0, w, s, p), dtype=float).ravel()
        if self._newton is None:
            mu = np.asarray(self._predict(xf, w, s, p), dtype=float).ravel()
            return self._state(xf, mu, xf, w, s, p, 0)
        f0 = self._f(xf, w, s, p)
        st = self._newton_from(xf, w, s, p)
        if self._converged(st) and self._f(st.x, w, s, p) <= f0 + 1e-12 * max(1.0, abs(f0)):
            return st
        x, its = self._descend(xf, w, s, p, max_descent)
        st = self._newton_from(x, w, s, p, its)
        if not self._converged(st):
            worst = float(np.max(np.abs(st.value_rates[self.free])))
            raise CompileError(f"inference did not reach its equilibrium (|dx/dt| = "
                               f"{worst:.3g} after descent and Newton's method)",
                               fix="use a smaller precision or weights of smaller scale; "
                               "relax() shows the dynamics")
        return st

    def _descend(self, x: np.ndarray, w: np.ndarray, s: np.ndarray, p: np.ndarray,
                 max_steps: int) -> tuple[np.ndarray, int]:
        """Damped Newton descent of ``F`` over the free units (Levenberg-Marquardt)."""
        x = x.copy()
        fr = self._free_idx
        lam, fx, its = 1e-3, self._f(x, w, s, p), 0
        eye = np.eye(len(fr))
        while its < max_steps:
            r, jac = (np.asarray(v, dtype=float) for v in self._jac(x[fr], x, w, s, p))
            r = r.ravel()
            if np.max(np.abs(r)) <= self.tol:
                break
            hess = -jac                                  # ẋ = -∂F/∂x
            while True:
                try:
                    dz = np.linalg.solve(hess + lam * eye, r)
                except np.linalg.LinAlgError:
                    dz = None
                trial = x.copy()
                if dz is not None:
                    trial[fr] += dz
                    ft = self._f(trial, w, s, p)
                if dz is not None and np.isfinite(ft) and ft <= fx:
                    x, fx, lam = trial, ft, max(lam / 10.0, 1e-12)
                    break
                lam *= 10.0
                if lam > 1e12:
                    return x, its
            its += 1
        return x, its

    def _f(self, x: np.ndarray, w: np.ndarray, s: np.ndarray, p: np.ndarray) -> float:
        return float(self._energy(x, self._predict(x, w, s, p), s, p))

    def _xdot(self, x: np.ndarray, w: np.ndarray, s: np.ndarray, p: np.ndarray
              ) -> np.ndarray:
        mu = self._predict(x, w, s, p)
        return np.asarray(self._rates(x, mu, x, w, s, p)[0], dtype=float).ravel()

    def _newton_from(self, x: np.ndarray, w: np.ndarray, s: np.ndarray, p: np.ndarray,
                     before: int = 0) -> PCState:
        z = self._newton(x[self._free_idx], x, w, s, p)
        x = x.copy()
        x[self._free_idx] = np.asarray(z, dtype=float).ravel()
        its = before + int(self._newton.stats().get("iter_count", 0) or 0)
        mu = np.asarray(self._predict(x, w, s, p), dtype=float).ravel()
        return self._state(x, mu, x, w, s, p, its)

    def _converged(self, st: PCState) -> bool:
        worst = float(np.max(np.abs(st.value_rates[self.free]), initial=0.0))
        return bool(np.isfinite(worst)
                    and worst <= 1e3 * self.tol * max(1.0, float(np.abs(st.x).max())))

    def relax(self, w: np.ndarray, values: Mapping[str, float], *, steps: int = 100,
              step: float = 0.1) -> PCState:
        """Explicit Euler steps of the inference dynamics ``x ← x + η ẋ`` (inputs
        clamped), from the feedforward pass."""
        w, s, p, x0 = self._inputs(w, values)
        x = np.asarray(self._forward(x0, w, s, p), dtype=float).ravel()
        for _ in range(int(steps)):
            mu = np.asarray(self._predict(x, w, s, p), dtype=float).ravel()
            xd = np.asarray(self._rates(x, mu, x, w, s, p)[0], dtype=float).ravel()
            x = x + step * np.where(self.free, xd, 0.0)
        mu = np.asarray(self._predict(x, w, s, p), dtype=float).ravel()
        return self._state(x, mu, x, w, s, p, int(steps))

    def fixed_prediction(self, w: np.ndarray, values: Mapping[str, float], *,
                         sweeps: int | None = None, step: float = 1.0) -> PCState:
        """Inference with the predictions and their derivatives held at the feedforward
        pass (Song et al. 2020; Millidge et al. 2022), ``sweeps`` steps of size
        ``step`` (default: one sweep per layer, :attr:`depth`, and ``η = 1``)."""
        w, s, p, x0 = self._inputs(w, values)
        xf = np.asarray(self._forward(x0, w, s, p), dtype=float).ravel()
        mu = np.asarray(self._predict(xf, w, s, p), dtype=float).ravel()
        x = xf.copy()
        n = self.depth if sweeps is None else int(sweeps)
        for _ in range(n):
            xd = np.asarray(self._rates(x, mu, xf, w, s, p)[0], dtype=float).ravel()
            x = x + step * np.where(self.free, xd, 0.0)
        return self._state(x, mu, xf, w, s, p, n)


def _sweeps_needed(net: object) -> int:
    """Arcs on the longest path from a hidden neuron to an output (0 without hidden
    neurons): the sweeps a backward error needs to reach every hidden unit."""
    g = net.graph
    longest: dict[Hashable, int] = {}
    for j in reversed(list(nx.topological_sort(g))):
        longest[j] = max((1 + longest[i] for i in g.successors(j)), default=0)
    hidden = [j for j in net.computing if j not in set(net.outputs)]
    return max((longest[j] for j in hidden), default=0)


def compile_predictive_coding(model: PredictiveCoding | PredictiveCodingSystem, *,
                              tol: float = 1e-13) -> CompiledPredictiveCoding:
    """Derive (if needed) and compile a predictive coding network.

    Parameters
    ----------
    model
        The declaration or its derived system.
    tol
        Newton tolerance of :meth:`CompiledPredictiveCoding.equilibrium`.

    Returns
    -------
    CompiledPredictiveCoding
    """
    system = model if isinstance(model, PredictiveCodingSystem) else \
        derive_predictive_coding(model)
    return CompiledPredictiveCoding(system, tol=tol)
