"""Compile an energy model's phases with CasADi: relaxation to fixed points, the EP update.

:func:`compile_energy` translates the derived phase dynamics ``ẋ = -∂(E + βC)/∂x``
and ``∂E/∂W`` (:mod:`cognitive_action.derive.energy`) into CasADi functions of the
state and a parameter vector (learnable weights, constants, ``β``, inputs, targets).
:meth:`CompiledEnergy.relax` finds a phase's fixed point in two stages:

1. **relaxation**: the derived ODE is integrated (CVODES) in chunks of
   ``RelaxOptions.horizon`` until ``max |ẋ| ≤ relax_tol``; a state that grows past
   ``divergence`` or a failed integration means ``E + βC`` is not bounded below along the
   flow;
2. **Newton** on the derived gradient (Jacobian of the rates by CasADi AD) until
   ``max |ẋ| ≤ tol``; the Hessian ``∂²(E + βC)/∂x²`` must then be positive definite
   (a minimum, not a saddle).

Each failure raises :class:`~cognitive_action.errors.FixedPointError` with what was
found. :func:`equilibrium_update` is the EP law (Scellier & Bengio 2017, Theorem 1;
Laborieux et al. 2021 for the symmetric estimator) at given weights:

    one-sided:  ΔW = -(1/β)  (∂E/∂W(x^β) - ∂E/∂W(x⁰)),
    symmetric:  ΔW = -(1/2β) (∂E/∂W(x^β) - ∂E/∂W(x^{-β})),

both estimates of ``-dJ/dW``, ``J = C(x⁰(W), y)``. The nudged phases start from the
free fixed point, as in EP practice.

The route registry compiles an :class:`~cognitive_action.derive.energy.EnergySystem`
(``compile_system(derive_energy(model))``) to the phase ODE as a
:class:`~cognitive_action.compile.system.CompiledSystem` (``β`` one of its parameters),
so :func:`~cognitive_action.compile.simulate.simulate` can integrate a phase.

Examples
--------
>>> from cognitive_action.declare.energy import hopfield
>>> model = hopfield([(1, 2)], inputs=[1], activation="identity", bias=False)
>>> ce = compile_energy(model)
>>> fp = ce.relax([0.5], {"e1": 2.0, "y2": 0.0})    # x2 = w e1 minimises ½x2² - w e1 x2
>>> round(float(fp.x[0]), 12), fp.min_eigenvalue
(1.0, 1.0)
>>> up = equilibrium_update(ce, [0.5], {"e1": 2.0, "y2": 0.0}, beta=0.1,
...                         nudging="symmetric")
>>> # -dJ/dw = -(x2 - y2) e1 = -2; here x^β = (w e1 + β y2)/(1 + β), so the estimate
>>> # is -2/(1 - β²): an error O(β²)
>>> bool(abs(up.delta_w[0] - (-2 / (1 - 0.1**2))) < 1e-12)
True
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import casadi as ca
import numpy as np

from cognitive_action.compile.assembly import STABILIZATION_PARAMETERS
from cognitive_action.compile.routes import BuildOptions, register_route
from cognitive_action.compile.system import CompiledSystem
from cognitive_action.compile.translate import Translator
from cognitive_action.declare.energy import EnergyModel
from cognitive_action.derive.energy import EnergySystem, derive_energy
from cognitive_action.errors import CompileError, DeclarationError, FixedPointError

__all__ = ["CompiledEnergy", "EnergyFixedPoint", "EquilibriumUpdate", "RelaxOptions",
           "NUDGINGS", "compile_energy", "equilibrium_update"]

#: The EP estimators: ``"one_sided"`` (S&B 2017) and ``"symmetric"`` (Laborieux 2021).
NUDGINGS = ("one_sided", "symmetric")


@dataclass(frozen=True)
class RelaxOptions:
    """How a phase is relaxed to its fixed point.

    Attributes
    ----------
    horizon
        Time integrated per chunk of the relaxation.
    max_chunks
        Chunks before giving up (no fixed point reached).
    relax_tol
        ``max |ẋ|`` at which the relaxation hands over to Newton.
    tol
        ``max |ẋ|`` (``= max |∂(E + βC)/∂x|``) Newton aims at.
    accept
        The largest ``max |ẋ|`` accepted where Newton stops (round-off of large rates
        can keep it above ``tol``).
    max_newton
        Newton steps allowed.
    divergence
        A state norm past which the relaxation counts as diverging.
    rtol, atol
        CVODES tolerances.
    """

    horizon: float = 10.0
    max_chunks: int = 60
    relax_tol: float = 1e-7
    tol: float = 1e-13
    accept: float = 1e-10
    max_newton: int = 30
    divergence: float = 1e6
    rtol: float = 1e-9
    atol: float = 1e-11


@dataclass(frozen=True)
class EnergyFixedPoint:
    """A fixed point of one phase.

    Attributes
    ----------
    x
        The neurons there (``model.neurons`` order).
    beta
        The phase's nudging.
    residual
        ``max |∂(E + βC)/∂x|``.
    min_eigenvalue
        Smallest eigenvalue of the Hessian ``∂²(E + βC)/∂x²`` (positive: a minimum).
    asymmetry
        ``‖H - Hᵀ‖/‖H‖`` of the Jacobian of the derived rates: 0 (to round-off) for a
        gradient flow.
    relax_time
        Time the relaxation integrated.
    newton_steps
        Newton steps after it.
    """

    x: np.ndarray
    beta: float
    residual: float
    min_eigenvalue: float
    asymmetry: float
    relax_time: float
    newton_steps: int

    def describe(self) -> str:
        """One sentence for reports."""
        return (f"minimum of E + beta*C at beta = {self.beta:g} (residual "
                f"{self.residual:.1e}, smallest Hessian eigenvalue "
                f"{self.min_eigenvalue:.3g}, relaxed for t = {self.relax_time:g} then "
                f"{self.newton_steps} Newton steps)")


@dataclass
class CompiledEnergy:
    """The compiled phases of an energy model.

    Attributes
    ----------
    system
        The derived :class:`~cognitive_action.derive.energy.EnergySystem`.
    model
        Its :class:`~cognitive_action.declare.energy.EnergyModel`.
    parameter_names
        The parameter vector's entries: learnable symbols, constants, ``β``, inputs,
        targets.
    rates, jacobian, energy_gradient, energy, cost
        CasADi functions of ``(x, p)``: ``ẋ``, ``∂ẋ/∂x`` (AD), ``∂E/∂W``, ``E``, ``C``.
    phase
        The phase ODE as a :class:`~cognitive_action.compile.system.CompiledSystem`.
    """

    system: EnergySystem
    model: EnergyModel
    parameter_names: tuple[str, ...]
    rates: ca.Function
    jacobian: ca.Function
    energy_gradient: ca.Function
    energy: ca.Function
    cost: ca.Function
    phase: CompiledSystem
    _integrators: dict = field(default_factory=dict, repr=False)

    # -- vectors -------------------------------------------------------------------------
    def weight_vector(self, weights: Mapping[str, float] | Sequence[float] | np.ndarray
                      ) -> np.ndarray:
        """The learnable symbols' values in ``model.learnable`` order."""
        names = [str(w) for w in self.model.learnable]
        if isinstance(weights, Mapping):
            vals = {str(k): v for k, v in weights.items()}
            missing = [n for n in names if n not in vals]
            if missing:
                raise CompileError(f"no value for the learnable symbol(s) "
                                   f"{', '.join(missing[:6])}",
                                   fix="give every symbol of model.learnable")
            w = np.array([float(vals[n]) for n in names])
        else:
            w = np.asarray(weights, dtype=float).reshape(-1)
            if w.size != len(names):
                raise CompileError(f"{w.size} weights for {len(names)} learnable symbols",
                                   fix="give them in model.learnable order")
        if not np.all(np.isfinite(w)):
            raise CompileError("a weight is not finite", fix="give finite numbers")
        return w

    def parameter_vector(self, weights: Mapping[str, float] | Sequence[float] | np.ndarray,
                         values: Mapping[str, float], beta: float = 0.0) -> np.ndarray:
        """``p`` from the weights, the signals and constants by name, and ``β``.

        Raises
        ------
        CompileError
            A missing value (every missing name listed) or a non-finite one.
        """
        w = self.weight_vector(weights)
        vals = {str(k): float(v) for k, v in values.items()}
        vals[str(self.model.beta)] = float(beta)
        rest = self.parameter_names[len(w):]
        missing = [n for n in rest if n not in vals]
        if missing:
            raise CompileError(f"no value for {', '.join(missing)}",
                               fix="give the inputs, targets and constants by name")
        p = np.concatenate([w, [vals[n] for n in rest]])
        if not np.all(np.isfinite(p)):
            raise CompileError("a parameter value is not finite", fix="give finite numbers")
        return p

    # -- fixed points --------------------------------------------------------------------
    def _integrator(self, options: RelaxOptions) -> ca.Function:
        key = (options.horizon, options.rtol, options.atol)
        fn = self._integrators.get(key)
        if fn is None:
            n, m = len(self.model.neurons), len(self.parameter_names)
            x = ca.MX.sym("x", n)
            p = ca.MX.sym("p", m)
            fn = ca.integrator("relax", "cvodes", {"x": x, "p": p, "ode": self.rates(x, p)},
                               0.0, float(options.horizon),
                               {"reltol": options.rtol, "abstol": options.atol,
                                "max_num_steps": 100000})
            self._integrators[key] = fn
        return fn

    def relax(self, weights: Mapping[str, float] | Sequence[float] | np.ndarray,
              values: Mapping[str, float], beta: float = 0.0, *,
              x0: np.ndarray | None = None, options: RelaxOptions | None = None
              ) -> EnergyFixedPoint:
        """The fixed point of the phase with nudging ``beta`` (module docstring).

        Parameters
        ----------
        weights
            Learnable symbols by name or in ``model.learnable`` order.
        values
            Inputs, targets and constants by name.
        beta
            0 for the free phase.
        x0
            Start (default: zeros).
        options
            :class:`RelaxOptions`.

        Raises
        ------
        FixedPointError
            The relaxation diverged or did not settle, or Newton ended away from a
            minimum.
        """
        opts = options or RelaxOptions()
        p = self.parameter_vector(weights, values, beta)
        n = len(self.model.neurons)
        x = np.zeros(n) if x0 is None else np.asarray(x0, dtype=float).reshape(-1).copy()
        if x.size != n or not np.all(np.isfinite(x)):
            raise CompileError(f"the start x0 must be {n} finite numbers (model.neurons "
                               f"order), got {x.size}", fix="pass None to start from rest")
        fix_unbounded = ("with an unbounded activation (identity, softplus) strong weights "
                         "make E unbounded below: use a bounded one (logistic, tanh), "
                         "smaller weights, or check the energy's sign")

        def residual(xv: np.ndarray) -> float:
            return float(np.max(np.abs(np.asarray(self.rates(xv, p)).reshape(-1))))

        res = residual(x)
        if not np.isfinite(res):
            raise FixedPointError(f"the rates are not finite at the start (beta = {beta:g})",
                                  fix="start from finite neurons", beta=beta)
        integ = self._integrator(opts)
        t = 0.0
        while res > opts.relax_tol:
            if t >= opts.horizon * opts.max_chunks:
                raise FixedPointError(
                    f"the relaxation of E + beta*C (beta = {beta:g}) did not settle by "
                    f"t = {t:g}: max |x_dot| = {res:.2e}", beta=beta, residual=res, time=t,
                    state_norm=float(np.linalg.norm(x)),
                    fix="relax longer (RelaxOptions(max_chunks=...)); a slow mode means a "
                    "nearly flat energy")
            try:
                x = np.asarray(integ(x0=x, p=p)["xf"]).reshape(-1)
            except RuntimeError as exc:
                raise FixedPointError(
                    f"the relaxation of E + beta*C (beta = {beta:g}) failed near t = {t:g} "
                    f"({str(exc).splitlines()[0][:120]}): the state escapes, E + beta*C is "
                    "not bounded below along the flow", fix=fix_unbounded, beta=beta,
                    time=t) from None
            t += opts.horizon
            norm = float(np.linalg.norm(x))
            if not np.isfinite(norm) or norm > opts.divergence:
                raise FixedPointError(
                    f"the relaxation of E + beta*C (beta = {beta:g}) diverged: |x| = "
                    f"{norm:.3g} at t = {t:g}; the energy is not bounded below along the "
                    "flow", fix=fix_unbounded, beta=beta, time=t, state_norm=norm)
            res = residual(x)
        steps = 0
        while res > opts.tol and steps < opts.max_newton:
            J = np.asarray(self.jacobian(x, p))
            try:
                step = np.linalg.solve(J, -np.asarray(self.rates(x, p)).reshape(-1))
            except np.linalg.LinAlgError:
                break
            steps += 1
            new = residual(x + step)
            if not np.isfinite(new) or new >= res and new > 10 * opts.tol:
                break  # keep the better point; the check below reports the residual
            x, res = x + step, new
        H = -np.asarray(self.jacobian(x, p))
        asym = float(np.linalg.norm(H - H.T) / max(np.linalg.norm(H), 1e-300))
        eig = float(np.min(np.linalg.eigvalsh((H + H.T) / 2)))
        if not res <= max(opts.tol, opts.accept):
            raise FixedPointError(
                f"no fixed point of E + beta*C (beta = {beta:g}): Newton stopped at "
                f"max |x_dot| = {res:.2e} > {max(opts.tol, opts.accept):g}", beta=beta,
                residual=res, min_eigenvalue=eig, time=t,
                fix="loosen RelaxOptions(accept=...) or check that E is smooth")
        if eig <= 0:
            raise FixedPointError(
                f"the fixed point of E + beta*C (beta = {beta:g}) is not a minimum: the "
                f"Hessian has the eigenvalue {eig:.4g} <= 0 (a saddle or a flat direction), "
                "so it does not attract the relaxation", fix=fix_unbounded, beta=beta,
                residual=res, min_eigenvalue=eig, time=t)
        return EnergyFixedPoint(x=x, beta=float(beta), residual=res, min_eigenvalue=eig,
                                asymmetry=asym, relax_time=t, newton_steps=steps)

    def hessian(self, x: np.ndarray, weights, values: Mapping[str, float],
                beta: float = 0.0) -> np.ndarray:
        """``∂²(E + βC)/∂x²`` at ``x`` (minus the Jacobian of the derived rates)."""
        return -np.asarray(self.jacobian(np.asarray(x, dtype=float),
                                         self.parameter_vector(weights, values, beta)))


def compile_energy(model: EnergyModel | EnergySystem, *, name: str | None = None
                   ) -> CompiledEnergy:
    """Compile the derived phases of an energy model (module docstring).

    Raises
    ------
    DeclarationError
        Neither an :class:`EnergyModel` nor an :class:`EnergySystem`.
    TranslationError
        An expression outside the translator's whitelist.
    """
    if isinstance(model, EnergyModel):
        system = derive_energy(model)
    elif isinstance(model, EnergySystem):
        system = model
    else:
        raise DeclarationError(f"compile_energy takes an EnergyModel, got "
                               f"{type(model).__name__}",
                               fix="declare it with declare.energy.hopfield(...)")
    m = system.model
    pnames = tuple(str(s) for s in (*m.learnable, *m.parameters, m.beta, *m.inputs,
                                    *m.targets))
    x = ca.SX.sym("x", len(m.neurons))
    p = ca.SX.sym("p", len(pnames))
    env = {str(s): x[i] for i, s in enumerate(m.neurons)} | {
        n: p[i] for i, n in enumerate(pnames)}
    tr = Translator(env)
    rates = ca.vertcat(*tr.many(system.rates))
    grad = ca.vertcat(*tr.many(system.energy_gradient))
    fr = ca.Function("energy_rates", [x, p], [rates], ["x", "p"], ["x_dot"])
    fj = ca.Function("energy_jacobian", [x, p], [ca.jacobian(rates, x)], ["x", "p"], ["J"])
    fg = ca.Function("energy_gradient_w", [x, p], [grad], ["x", "p"], ["dE_dW"])
    fe = ca.Function("energy", [x, p], [tr(m.energy)], ["x", "p"], ["E"])
    fc = ca.Function("cost", [x, p], [tr(m.cost)], ["x", "p"], ["C"])
    t = ca.SX.sym("t")
    pp = ca.SX.sym("p_full", len(pnames) + len(STABILIZATION_PARAMETERS))
    ode = fr(x, pp[:len(pnames)])
    states = tuple(str(s) for s in m.neurons)
    phase = CompiledSystem(
        name=name or m.name, route="energy", states=states, coordinates=states,
        velocities=(), multiplier_states=(), parameters=pnames,
        rhs=ca.Function("rhs", [t, x, pp], [ode]),
        unknowns=ca.Function("unknowns", [t, x, pp], [ode]),
        unknown_names=tuple(str(u) for u in system.unknowns), constraints=None,
        constraint_names=(), constraint_kinds=(), projection_builder=None, dae=None,
        vakonomic=False, linear_solver="none", build_time=0.0,
        signals={str(s): "constant parameter" for s in m.signals})
    return CompiledEnergy(system=system, model=m, parameter_names=pnames, rates=fr,
                          jacobian=fj, energy_gradient=fg, energy=fe, cost=fc, phase=phase)


@register_route("energy")
def _energy_route(system: EnergySystem, options: BuildOptions) -> CompiledSystem:
    if options.signals:
        raise CompileError("an energy model's inputs and targets are constant parameters "
                           "of a phase", fix="give them as parameter values, not signals=")
    t0 = time.perf_counter()
    out = compile_energy(system, name=options.name).phase
    out.build_time = time.perf_counter() - t0
    return out


@dataclass(frozen=True)
class EquilibriumUpdate:
    """The EP update at given weights.

    Attributes
    ----------
    delta_w
        The estimate of ``-dJ/dW`` (``model.learnable`` order).
    beta, nudging
        The nudging strength and the estimator (:data:`NUDGINGS`).
    free
        The free fixed point.
    nudged
        The nudged fixed points: ``(x^β,)`` one-sided, ``(x^β, x^{-β})`` symmetric.
    """

    delta_w: np.ndarray
    beta: float
    nudging: str
    free: EnergyFixedPoint
    nudged: tuple[EnergyFixedPoint, ...]


def equilibrium_update(compiled: CompiledEnergy | EnergyModel,
                       weights: Mapping[str, float] | Sequence[float] | np.ndarray,
                       values: Mapping[str, float], *, beta: float,
                       nudging: str = "one_sided", free: EnergyFixedPoint | None = None,
                       options: RelaxOptions | None = None) -> EquilibriumUpdate:
    """The EP weight update (module docstring) at ``weights``.

    Parameters
    ----------
    compiled
        A :class:`CompiledEnergy` (or a model, compiled here).
    weights, values
        As :meth:`CompiledEnergy.relax`.
    beta
        The nudging strength, ``> 0``.
    nudging
        ``"one_sided"`` (phases ``0`` and ``β``) or ``"symmetric"`` (``±β``).
    free
        The free fixed point, if already relaxed.
    options
        :class:`RelaxOptions`.

    Raises
    ------
    DeclarationError
        ``beta <= 0`` (the sign is the estimator's: ``+β`` pulls toward the targets) or
        an unknown ``nudging``.
    FixedPointError
        A phase without a fixed point.
    """
    if nudging not in NUDGINGS:
        raise DeclarationError(f"unknown nudging {nudging!r}", fix=f"use one of {NUDGINGS}")
    if not (isinstance(beta, (int, float, np.floating)) and np.isfinite(beta) and beta > 0):
        raise DeclarationError(
            f"the nudging strength beta = {beta!r} is not positive: the nudged phase "
            "E + beta*C must pull the outputs toward the targets, and the update's sign "
            "-(1/beta)(dE/dW(x_beta) - dE/dW(x_0)) assumes it",
            fix="give beta > 0; for nudging in both directions use nudging='symmetric'")
    ce = compiled if isinstance(compiled, CompiledEnergy) else compile_energy(compiled)
    beta = float(beta)
    f0 = free or ce.relax(weights, values, 0.0, options=options)
    xp = ce.relax(weights, values, beta, x0=f0.x, options=options)
    dE = lambda fp: np.asarray(ce.energy_gradient(  # noqa: E731
        fp.x, ce.parameter_vector(weights, values, fp.beta))).reshape(-1)
    if nudging == "one_sided":
        return EquilibriumUpdate(-(dE(xp) - dE(f0)) / beta, beta, nudging, f0, (xp,))
    xm = ce.relax(weights, values, -beta, x0=f0.x, options=options)
    return EquilibriumUpdate(-(dE(xp) - dE(xm)) / (2 * beta), beta, nudging, f0, (xp, xm))
