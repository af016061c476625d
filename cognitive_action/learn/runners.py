"""Training modes that run a derived law in time: ``"dynamics"`` and ``"diffusion"``.

Both present the samples of a data set one after the other, each for a time ``τ``, to
a compiled system whose inputs and targets are runtime parameters (compiled once: the
build does not depend on the number of samples), in the order of :func:`train`'s
``"limit"`` mode and of :func:`~cognitive_action.learn.train.sgd_baseline` (the same
seeded permutation per epoch), from the same initial weights, at rest (``Ẇ = 0``).
Losses and accuracies are computed from the weights with the limit kernel's
``predict`` (:func:`~cognitive_action.learn.train._record`), so they are the numbers
``mode="limit"`` reports; checkpoints are the limit mode's files, plus the whole state
(weights, their velocities ``Ẇ``, neurons) for a bit-identical resume.

The parameters from the learning rate
-------------------------------------
The action (eq. 5, 7) is ``∫ ½(m_x|ẋ|² + m_W|Ẇ|²) ϖ − ϖ V dt`` with ``ϖ = exp(θt)``.
Divided by ``ϖ``, the weight rows of eq. (9) read ``m_W (Ẅ + θ Ẇ) = −δ_j G^j_W``. In
the limit of Section 3 — ``θ → ∞``, ``m_W → 0`` with ``γ = θ m_W`` fixed, and
``m_x/m_W → 0`` so that the multipliers of eq. (10) become the backprop deltas
(``T δ = −V_x``, eq. 17) — the inertial term ``m_W Ẅ = (γ/θ) Ẅ`` drops and

    γ Ẇ = −δ_j G^j_W = −∂V/∂W         (eq. 14-15, with the sign of the design notes).

A sample held for a time ``τ`` then moves the weights by ``ΔW = −(τ/γ) ∂V/∂W`` to first
order in ``τ``: SGD with the learning rate

    η = τ/γ,    so    γ = τ/η,    m_W = γ/θ,    m_x = r m_W     (r = ``mass_ratio``).

The finite parameters leave three differences from SGD, each small in its own ratio:
``Ẇ`` relaxes toward ``−∂V/∂W/γ`` at rate ``θ`` (a lag of ``1/θ`` after every switch:
relative ``O(1/(θτ))``), the multipliers of eq. (10) differ from the backprop deltas
by ``O(m_x/m_W)``, and the gradient flow over ``τ`` differs from its Euler step (SGD)
by ``O(η²)`` per sample. The presentation's own integrator
(:mod:`~cognitive_action.learn.presentation`) with one ETD1 step freezes the forcing
over ``τ``, so it reproduces SGD up to the first two; more steps follow the flow.

``"dynamics"``
    The network route's eq. (8)-(10) (finite masses, ``ϖ = exp(θt)`` divided through),
    per sample: the switch onto ``G = 0``, ``Ġ = 0`` of the new sample, then the
    weights over ``τ`` by exponential time differencing
    (:func:`~cognitive_action.learn.presentation.compile_presentation`), one CasADi
    call per sample. ``scheme="rk4"`` runs instead :mod:`cognitive_action.data.run`'s
    pieces (Newton switch :func:`~cognitive_action.data.run.consistent_state`, classical
    RK4 :func:`~cognitive_action.data.run.sample_step`), slower, as a cross-check.
``"diffusion"``
    The neurons of eq. (18)-(19), ``ẋ/c + x − σ(a) = 0``, with their multipliers as
    states (eq. 20, vakonomic rule), compiled by the speed-``c`` template route
    (:func:`~cognitive_action.compile.network_speed.compile_speed_network`). Eq. (20)
    is anti-stable forward in time (eigenvalues ``+c``): the run uses the stable
    relaxation ``c⁻¹ δ̇ = −(T δ + V_x)``
    (:func:`~cognitive_action.compile.variants.stable_variant`, ``"relaxation"``, same
    equilibrium), and reports it. At a switch the inputs jump to the new sample
    (``G = x_i − e_i = 0``, ``Ġ = 0``) and the hidden velocities to ``N = 0``; hidden
    outputs, multipliers, weights and velocities are continuous: the new sample
    travels forward and its error backward at speed ``c``. The presentation is
    integrated by classical RK4 (:func:`~cognitive_action.data.run.sample_step`) with
    ``ceil(τ max(c, θ))`` steps by default (stiffness ``c``). As ``c → ∞`` it tends to
    the ``"dynamics"`` mode's limit.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import casadi as ca
import numpy as np
import sympy as sp

from cognitive_action.compile.system import CompiledSystem, compile_system
from cognitive_action.declare.network import Network
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.roles import RoleKind
from cognitive_action.derive.network import derive_network
from cognitive_action.errors import DataError, DeclarationError, SimulationError
from cognitive_action.learn.kernel import LimitKernel, compile_limit_law
from cognitive_action.learn.presentation import compile_presentation
from cognitive_action.learn.train import (
    Dataset,
    TrainingHistory,
    _fingerprint,
    _load,
    _load_extra,
    _record,
    _save,
    initial_weights,
    register_runner,
)

__all__ = ["DynamicsOptions", "DiffusionOptions", "DynamicsHistory", "dynamics_parameters",
           "run_dynamics", "run_diffusion", "speed_problem"]

#: Where classical RK4's stability region meets the negative real axis (``h|λ|``).
_RK4_REAL_BOUND = 2.78
#: ``θ`` when neither the options nor the problem's values give one.
DEFAULT_THETA = 50.0
SCHEMES = ("etd", "rk4")


def _positive(name: str, value: Any, ex: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not (math.isfinite(value) and value > 0):
        raise DeclarationError(f"{name} = {value!r} is not a positive finite number",
                               fix=f"e.g. {ex}")


def _count(name: str, value: Any, ex: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DeclarationError(f"{name} = {value!r} is not a positive integer",
                               fix=f"e.g. {ex}")


@dataclass(frozen=True)
class DynamicsOptions:
    """Options of ``mode="dynamics"`` (validated on construction).

    Parameters
    ----------
    tau
        Presentation time of a sample; ``None``: ``η γ`` with :func:`train`'s ``gamma``.
    theta
        ``θ`` of ``ϖ = exp(θt)``; ``None``: the problem's value (``values``), else
        :data:`DEFAULT_THETA`.
    mass_ratio
        ``r = m_x/m_W``.
    steps
        Integration steps per presentation.
    order
        Order of the exponential integrator (1 or 2; ``scheme="etd"``).
    scheme
        ``"etd"`` (exponential time differencing, Jacobi switch: the fast path) or
        ``"rk4"`` (classical RK4 and the Newton switch of :mod:`cognitive_action.data.run`;
        needs ``θ τ/steps`` below about 2.8).
    linear_solver
        Eq. (10)'s solver in the network route (``None``: the route's default).
    codegen
        Run the presentation from generated C (:mod:`cognitive_action.compile.codegen`:
        built once with the system's C compiler, linked to BLAS, cached on disk):
        faster per sample (docs/performance.md), bit-identical results; needs a C
        compiler and ``ldl`` or ``qr`` for eq. (10).
    """

    tau: float | None = 1.0
    theta: float | None = None
    mass_ratio: float = 1e-3
    steps: int = 1
    order: int = 1
    scheme: str = "etd"
    linear_solver: str | None = None
    codegen: bool = False

    def __post_init__(self) -> None:
        _positive("tau", self.tau, "tau = 1.0", allow_none=True)
        _positive("theta", self.theta, "theta = 50", allow_none=True)
        _positive("mass_ratio", self.mass_ratio, "mass_ratio = 1e-3")
        _count("steps", self.steps, "steps = 1")
        if self.order not in (1, 2) or isinstance(self.order, bool):
            raise DeclarationError(f"order = {self.order!r}", fix="use order 1 or 2")
        if self.scheme not in SCHEMES:
            raise DeclarationError(f"unknown scheme {self.scheme!r}",
                                   fix=f"use one of {', '.join(SCHEMES)}")
        if not isinstance(self.codegen, bool):
            raise DeclarationError(f"codegen = {self.codegen!r}", fix="True or False")


@dataclass(frozen=True)
class DiffusionOptions:
    """Options of ``mode="diffusion"`` (validated on construction).

    Parameters
    ----------
    tau, theta
        As in :class:`DynamicsOptions`.
    mass_ratio
        ``r = m_x/m_W``. The neurons' inertia enters eq. (20) as ``c m_x ẍ`` with
        ``ẍ`` of order ``c`` after a switch, so the limit needs ``m_x c² → 0``: the
        default is tiny (no row of the speed-``c`` route divides by ``m_x``).
    speed
        The diffusion speed ``c`` of eq. (18); must exceed ``θ`` (the relaxation's
        multiplier block has eigenvalues ``θ − c`` on a feedforward net).
    steps
        RK4 steps per presentation; ``None``: ``ceil(τ max(c, θ))``, ``h c = 1`` (RK4 is
        stable up to ``h |λ| ≈ 2.8`` on the real axis, the stiffest rate is ``c``; at
        ``h c = 2`` the multipliers' transients after a switch are not resolved and the
        error no longer falls with ``c``).
    """

    tau: float | None = 1.0
    theta: float | None = None
    mass_ratio: float = 1e-9
    speed: float = 200.0
    steps: int | None = None

    def __post_init__(self) -> None:
        _positive("tau", self.tau, "tau = 1.0", allow_none=True)
        _positive("theta", self.theta, "theta = 50", allow_none=True)
        _positive("mass_ratio", self.mass_ratio, "mass_ratio = 1e-3")
        _positive("speed", self.speed, "speed = 200")
        _count("steps", self.steps, "steps = 200", allow_none=True)


@dataclass
class DynamicsHistory(TrainingHistory):
    """A :class:`~cognitive_action.learn.train.TrainingHistory` with what a run in time
    adds.

    Attributes
    ----------
    settings
        ``tau``, ``gamma``, ``theta``, ``m_W``, ``m_x``, ``steps``, the scheme and, for
        diffusion, ``speed`` and the variant that runs.
    switch_residuals
        Per epoch, ``[max |G|, max |Ġ|]`` after the switches of its samples.
    seconds, cpu_seconds
        Wall and CPU time (``time.process_time``: this process's, whatever else the
        machine runs) of the presentations of each epoch, metrics excluded.
    """

    settings: dict = field(default_factory=dict)
    switch_residuals: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    cpu_seconds: list = field(default_factory=list)


# -- parameters --------------------------------------------------------------------------
def _symbol_value(expr: sp.Expr, what: str, given: Mapping[str, float]) -> tuple[str | None,
                                                                                   float | None]:
    """``(name, value)`` of a parameter symbol, ``(None, number)`` of a number."""
    if expr.is_number:
        return None, float(expr)
    if isinstance(expr, sp.Symbol):
        return str(expr), given.get(str(expr))
    raise DeclarationError(f"the {what} is {expr}, neither a number nor one parameter",
                           fix=f"declare the {what} as a parameter symbol")


def dynamics_parameters(problem: Problem, *, learning_rate: float, tau: float,
                        theta: float | None, mass_ratio: float,
                        values: Mapping[str, float] | None = None
                        ) -> tuple[dict[str, float], dict[str, float]]:
    """The parameter values that make the derived dynamics SGD with rate ``η``.

    ``γ = τ/η``, ``m_W = γ/θ``, ``m_x = r m_W`` (see the module docstring); ``θ`` is
    the value of ``ρ = ϖ̇/ϖ``, the rate the derivation finds in the time weight.

    Returns
    -------
    tuple of dict
        ``(values, settings)``: values by parameter name for the compiled system (the
        given ``values`` with the masses and ``θ`` set), and the settings for reports.

    Raises
    ------
    DeclarationError
        A time weight without a constant positive rate (``ϖ = 1``: the weights would
        oscillate, not follow the gradient), masses that are not parameters, or a
        ``θ`` that contradicts a numeric rate.

    Examples
    --------
    >>> from cognitive_action.declare import symbols as S
    >>> from cognitive_action.declare.network import layered
    >>> th, = S.parameters("theta")
    >>> p = layered([2, 2, 1]).problem(weight=sp.exp(th * S.t), parameters=[th])
    >>> v, s = dynamics_parameters(p, learning_rate=0.05, tau=1.0, theta=50.0,
    ...                            mass_ratio=1e-3)
    >>> round(s["gamma"], 12), round(v["m_W"], 12), round(v["m_x"], 12), v["theta"]
    (20.0, 0.4, 0.0004, 50.0)
    """
    given = {str(k): float(v) for k, v in (values or {}).items()}
    net = problem.network
    rate = _rate_of(problem)
    if rate.free_symbols - {s for s in problem.parameters}:
        raise DeclarationError(f"the time weight's rate ϖ̇/ϖ = {rate} is not constant",
                               fix="use weight = exp(theta*t)")
    rate_name, rate_value = _symbol_value(rate, "rate ϖ̇/ϖ of the time weight", given)
    if rate_name is None:
        if theta is not None and abs(theta - rate_value) > 1e-12 * abs(rate_value):
            raise DeclarationError(f"theta = {theta} but the time weight's rate is the "
                                   f"number {rate_value}", fix="drop theta, or declare "
                                   "weight = exp(theta*t) with a parameter theta")
        th = rate_value
    else:
        th = theta if theta is not None else rate_value if rate_value is not None \
            else DEFAULT_THETA
    if not th > 0:
        raise DeclarationError(
            f"the time weight's rate is {th}: with ϖ = 1 (θ = 0) the weights oscillate "
            "under eq. (9) instead of following the gradient",
            fix="declare weight = exp(theta*t) (eq. 7) and give theta > 0")
    mx, mw = (problem.action.masses[net.neurons[0]], problem.action.masses[net.weights[0]])
    for m, what in ((mx, "neurons' mass m_x"), (mw, "weights' mass m_W")):
        if not isinstance(m, sp.Symbol) or problem.roles.kind(m) != RoleKind.MASS:
            raise DeclarationError(f"the {what} is {m}, not a mass parameter: the runner "
                                   "sets it from the learning rate (m_W = γ/θ, γ = τ/η)",
                                   fix="declare the masses as parameters (the default of "
                                   "Network.problem; in a problem file [action] mass_x = "
                                   "\"m_x\", mass_W = \"m_W\" with both in parameters)")
    gamma = float(tau) / float(learning_rate)
    m_w = gamma / th
    out = dict(given) | {str(mw): m_w, str(mx): float(mass_ratio) * m_w}
    if rate_name is not None:
        out[rate_name] = float(th)
    settings = {"tau": float(tau), "gamma": gamma, "theta": float(th), "m_W": m_w,
                "m_x": float(mass_ratio) * m_w, "learning_rate": float(learning_rate)}
    return out, settings


def _rate_of(problem: Problem) -> sp.Expr:
    """``ϖ̇/ϖ`` of the problem's time weight, as the derivation finds it."""
    from cognitive_action.derive.network import class_residual

    weight = problem.action.weight
    _, rate = class_residual(problem.action.masses[problem.network.weights[0]], weight)
    return sp.simplify(rate)


# -- the shared loop ----------------------------------------------------------------------
@dataclass
class _Compiled:
    """What the loop needs: the per-sample function and where the sample goes."""

    function: ca.Function
    system: CompiledSystem
    p: np.ndarray
    signal_positions: list[int]
    weight_slice: slice
    y0: np.ndarray
    settings: dict


def _signals(system: CompiledSystem, net: Network) -> list[int]:
    e, y = net.input_signals(), net.target_signals()
    names = [str(e[i]) for i in net.inputs if i in e] + [str(y[o]) for o in net.outputs]
    return [system.parameters.index(n) for n in names]


def _run(mode: str, problem: Problem, tr: Dataset, te: Dataset | None, compiled: _Compiled,
         kernel: LimitKernel, *, epochs: int, seed: int, out: str | os.PathLike[str] | None,
         resume: bool, progress: Callable[[int, int, TrainingHistory], None] | None,
         config: dict) -> DynamicsHistory:
    fingerprint = _fingerprint(problem, config, tr)
    out_dir = None if out is None else Path(out)
    loaded = _load(out_dir, fingerprint, DynamicsHistory) if out_dir is not None and resume \
        else None
    fn, sl = compiled.function, compiled.weight_slice
    n_y, n_p = compiled.system.n_states, compiled.system.n_parameters
    if loaded is None:
        y = compiled.y0.copy()
        rng = np.random.default_rng([seed, 0x0DE5])
        history = DynamicsHistory(mode=mode, settings=compiled.settings)
        _record(history, kernel, kernel.to_blocks(y[sl]), tr, te)
        start = 0
    else:
        _, state, start, history = loaded
        y = _load_extra(out_dir, "state")
        rng = np.random.default_rng()
        rng.bit_generator.state = state
        history.resumed_from = start
    x0 = np.zeros(n_y)
    P = np.zeros(n_p + 1)
    P[:n_p] = compiled.p
    res = np.zeros(n_y)
    g, gd = np.zeros(1), np.zeros(1)
    buf, evaluate = fn.buffer()
    buf.set_arg(0, memoryview(x0))
    buf.set_arg(1, memoryview(P))
    buf.set_res(0, memoryview(res))
    buf.set_res(1, memoryview(g))
    buf.set_res(2, memoryview(gd))
    sig = compiled.signal_positions
    V = np.hstack([tr.X, tr.Y])
    n = len(tr.X)
    tau = compiled.settings["tau"]
    for epoch in range(start, epochs):
        t_start, c_start = time.perf_counter(), time.process_time()
        g_max = gd_max = 0.0
        x0[:] = y
        for k, i in enumerate(rng.permutation(n)):
            P[sig] = V[i]
            P[n_p] = (epoch * n + k) * tau
            evaluate()
            if buf.ret() != 0 or not math.isfinite(res[sl.start]) or \
                    not math.isfinite(g[0] + gd[0]):
                raise SimulationError(
                    f"the {mode} run failed on sample {int(i)} of epoch {epoch + 1}",
                    fix="use smaller steps (steps=...) or a smaller learning rate",
                    time=float(P[n_p]), state_norm=float(np.linalg.norm(x0)))
            g_max, gd_max = max(g_max, g[0]), max(gd_max, gd[0])
            x0[:] = res
        y = x0.copy()
        if not np.all(np.isfinite(y)):
            raise SimulationError(f"the {mode} run left finite values in epoch {epoch + 1}",
                                  fix="use more steps or a smaller learning rate",
                                  time=float(P[n_p]), state_norm=float("nan"))
        history.switch_residuals.append([float(g_max), float(gd_max)])
        history.seconds.append(time.perf_counter() - t_start)
        history.cpu_seconds.append(time.process_time() - c_start)
        _record(history, kernel, kernel.to_blocks(y[sl]), tr, te)
        if out_dir is not None:
            _save(out_dir, y[sl].copy(), rng, epoch + 1, history, fingerprint,
                  extra={"state": y})
        if progress is not None:
            progress(epoch + 1, epochs, history)
    history.weights = y[sl].copy()
    return history


def _initial_state(system: CompiledSystem, net: Network, seed: int) -> np.ndarray:
    y = np.zeros(system.n_states)
    w0 = initial_weights(net, seed)
    for wk, v in zip(net.weights, w0):
        y[system.states.index(str(wk))] = v
    return y


def _weight_slice(system: CompiledSystem, net: Network) -> slice:
    idx = [system.states.index(str(w)) for w in net.weights]
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise DeclarationError("the compiled state does not hold the weights contiguously",
                               fix="compile the problem by the network routes")
    return slice(idx[0], idx[0] + len(idx))


# -- dynamics ------------------------------------------------------------------------------
def _compile_dynamics(problem: Problem, settings: dict, values: dict, opts: DynamicsOptions,
                      seed: int) -> _Compiled:
    from cognitive_action.data.run import consistent_state, sample_step

    net = problem.network
    ns = derive_network(problem)
    system = compile_system(ns, linear_solver=opts.linear_solver)
    sig = _signals(system, net)
    fallback = {system.parameters[i]: 0.0 for i in sig}
    p = system.parameter_vector(values, fallback=fallback)
    tau, rate = settings["tau"], settings["theta"]
    if opts.scheme == "etd":
        pres = compile_presentation(system, ns, tau=tau, rate=rate, steps=opts.steps,
                                    order=opts.order)
        fn, scheme = pres.function, pres.scheme
    else:
        switch = consistent_state(system, net)
        step = sample_step(system, tau, opts.steps)
        y = ca.MX.sym("y", system.n_states)
        P = ca.MX.sym("p", system.n_parameters + 1)
        y_plus, G, Gd = switch(P[-1], y, P[:-1])
        y_end = step(y_plus, ca.MX(0, 1), P)[:, 1]
        fn = ca.Function("presentation", [y, P], [y_end, ca.mmax(ca.fabs(G)),
                                                  ca.mmax(ca.fabs(Gd))])
        scheme = f"classical RK4, {opts.steps} steps per presentation, Newton switch"
    if opts.codegen:
        from cognitive_action.compile.codegen import (
            blas_link_arguments,
            build_library,
            generate_source,
        )

        lib = build_library(generate_source([fn]), link=blas_link_arguments() or ())
        fn = ca.external(fn.name(), str(lib.path))
        scheme += ", generated C"
    settings = settings | {"steps": opts.steps, "scheme": scheme,
                           "linear_solver": system.linear_solver}
    return _Compiled(fn, system, p, sig, _weight_slice(system, net),
                     _initial_state(system, net, seed), settings)


def _validated(options: Any, kind: type) -> Any:
    if options is None:
        return kind()
    if isinstance(options, Mapping):
        try:
            return kind(**options)
        except TypeError as exc:
            raise DeclarationError(f"bad {kind.__name__}: {exc}",
                                   fix=f"the fields are {', '.join(kind.__dataclass_fields__)}"
                                   ) from exc
    if not isinstance(options, kind):
        raise DeclarationError(f"options must be a {kind.__name__}, got "
                               f"{type(options).__name__}", fix=f"pass {kind.__name__}(...)")
    return options


def _check_stream_tau(train: Dataset, tau: float) -> None:
    """Refuse a stream whose own presentation time is not the run's (never silently
    present it for another time)."""
    if train.tau is not None and not math.isclose(train.tau, tau, rel_tol=1e-12):
        raise DataError(f"the stream presents each sample for tau = {train.tau:g}, the "
                        f"run's options for tau = {tau:g}",
                        fix=f"give options with tau={train.tau:g} (or build the stream "
                        f"with tau={tau:g})", field="train_data.tau")


def run_dynamics(problem: Problem, train: Dataset, test: Dataset | None, *, epochs: int,
                 learning_rate: float, seed: int = 0,
                 out: str | os.PathLike[str] | None = None, resume: bool = True,
                 progress: Callable[[int, int, TrainingHistory], None] | None = None,
                 values: Mapping[str, float] | None = None, gamma: float = 1.0,
                 kernel: LimitKernel | None = None,
                 options: DynamicsOptions | Mapping[str, Any] | None = None
                 ) -> DynamicsHistory:
    """``mode="dynamics"``: the full derived dynamics over the data (module docstring).

    Called by :func:`~cognitive_action.learn.train.train` with validated data; the
    arguments are :func:`train`'s.

    Returns
    -------
    DynamicsHistory

    Raises
    ------
    DeclarationError
        Bad options, a problem without a dissipative time weight or mass parameters.
    DerivationError
        Neurons that are not ``x = σ(a)``, a net with cycles (the limit kernel's metrics
        and the Jacobi switch need a feedforward net).
    SimulationError
        Non-finite values during the run (too few steps).
    """
    opts = _validated(options, DynamicsOptions)
    tau = opts.tau if opts.tau is not None else learning_rate * gamma
    _check_stream_tau(train, tau)
    vals, settings = dynamics_parameters(problem, learning_rate=learning_rate, tau=tau,
                                         theta=opts.theta, mass_ratio=opts.mass_ratio,
                                         values=values)
    kernel = kernel or compile_limit_law(problem, values)
    if opts.scheme == "rk4" and settings["theta"] * tau / opts.steps > _RK4_REAL_BOUND:
        raise DeclarationError(
            f"{opts.steps} RK4 steps over tau = {tau:g} at theta = {settings['theta']:g} "
            f"are beyond RK4's stability bound h θ = {_RK4_REAL_BOUND}",
            fix=f"give steps >= {math.ceil(settings['theta'] * tau / _RK4_REAL_BOUND)}, "
            "or scheme='etd' (exact in the damping, any step)")
    compiled = _compile_dynamics(problem, settings, vals, opts, seed)
    config = {"mode": "dynamics", "learning_rate": float(learning_rate), "seed": int(seed),
              "batch": 1, "options": asdict(opts), "values": vals}
    return _run("dynamics", problem, train, test, compiled, kernel, epochs=epochs, seed=seed,
                out=out, resume=resume, progress=progress, config=config)


# -- diffusion -----------------------------------------------------------------------------
def speed_problem(problem: Problem, speed: sp.Symbol) -> Problem:
    """The same network problem with neurons of speed ``c`` (eq. 18-19): same graph,
    activations, bias, masses, time weight and loss, ``speed`` added to the parameters.

    Raises
    ------
    DeclarationError
        A problem not built by ``Network.problem`` or whose network already has a speed.
    """
    net = problem.network
    if not isinstance(net, Network) or net.speed is not None:
        raise DeclarationError("the diffusion mode starts from a network problem of "
                               "instantaneous neurons (eq. 4)",
                               fix="build it with layered([...]).problem(...)")
    g = net.graph.copy()
    if net.bias is not None:
        g.remove_node(net.bias)
    acts = {j: net.activation_of(j) for j in net.computing
            if j != net.bias and net.activation_of(j) != net.default_activation}
    net_c = Network(g, [i for i in net.inputs if i != net.bias], net.default_activation,
                    activations=acts, bias=net.bias is not None, speed=speed,
                    outputs=net.outputs)
    action = problem.action
    loss = sp.simplify(-action.lagrangian / action.weight)
    params = sorted(set(problem.parameters) | {speed}, key=str)
    mx, mw = action.masses[net.neurons[0]], action.masses[net.weights[0]]
    return net_c.problem(mass_x=mx, mass_W=mw, weight=action.weight, loss=loss,
                         parameters=[q for q in params if q not in (mx, mw, speed)],
                         name=f"{problem.name} (speed c)")


def _speed_switch(system: CompiledSystem, problem: Problem) -> ca.Function:
    """``(t, y, p) → (y⁺, G, Ġ)`` at a switch of a speed-``c`` net: inputs onto
    ``G = x_i − e_i = 0`` and ``Ġ = 0``, hidden velocities onto ``N = 0``; both are
    linear in what they set, so one Newton step each is exact (Jacobians by AD)."""
    net = problem.network
    names = [c.name for c in problem.constraints]
    neuron_of = {c: net.order[names.index(c)] for c in system.constraint_names}
    in_rows = [k for k, c in enumerate(system.constraint_names) if neuron_of[c] in net.inputs]
    hid_rows = [k for k, c in enumerate(system.constraint_names)
                if neuron_of[c] not in net.inputs]
    pos = {c: system.states.index(str(net.x[neuron_of[c]])) for c in system.constraint_names}
    vel = {c: system.states.index(str(net.x[neuron_of[c]]) + "_dot")
           for c in system.constraint_names}
    cn = system.constraint_names
    xi = [pos[cn[k]] for k in in_rows]
    vi = [vel[cn[k]] for k in in_rows] + [vel[cn[k]] for k in hid_rows]
    t, y, p = ca.MX.sym("t"), ca.MX.sym("y", system.n_states), ca.MX.sym("p",
                                                                        system.n_parameters)
    zx = ca.MX.sym("zx", len(xi))
    sel_x = ca.DM(ca.Sparsity.triplet(system.n_states, len(xi), xi, list(range(len(xi)))), 1.0)
    keep_x = np.ones(system.n_states)
    keep_x[xi] = 0.0
    yx = y * ca.DM(keep_x) + ca.mtimes(sel_x, zx)
    G, _ = system.constraints(t, yx, p)
    Gi = G[in_rows]
    step_x = ca.solve(ca.jacobian(Gi, zx), Gi, "qr") if xi else ca.MX(0, 1)
    y1 = ca.substitute(yx, zx, y[xi] - ca.substitute(step_x, zx, y[xi])) if xi else y
    zv = ca.MX.sym("zv", len(vi))
    sel_v = ca.DM(ca.Sparsity.triplet(system.n_states, len(vi), vi, list(range(len(vi)))), 1.0)
    keep_v = np.ones(system.n_states)
    keep_v[vi] = 0.0
    yv = y1 * ca.DM(keep_v) + ca.mtimes(sel_v, zv)
    G, Gd = system.constraints(t, yv, p)
    R = ca.vertcat(Gd[in_rows], G[hid_rows])
    step_v = ca.solve(ca.jacobian(R, zv), R, "qr")
    y2 = ca.substitute(yv, zv, y1[vi] - ca.substitute(step_v, zv, y1[vi]))
    G2, Gd2 = system.constraints(t, y2, p)
    res = ca.vertcat(G2, Gd2[in_rows])
    return ca.Function("speed_switch", [t, y, p], [y2, ca.mmax(ca.fabs(G2)),
                                                    ca.mmax(ca.fabs(res))])


def run_diffusion(problem: Problem, train: Dataset, test: Dataset | None, *, epochs: int,
                  learning_rate: float, seed: int = 0,
                  out: str | os.PathLike[str] | None = None, resume: bool = True,
                  progress: Callable[[int, int, TrainingHistory], None] | None = None,
                  values: Mapping[str, float] | None = None, gamma: float = 1.0,
                  kernel: LimitKernel | None = None,
                  options: DiffusionOptions | Mapping[str, Any] | None = None
                  ) -> DynamicsHistory:
    """``mode="diffusion"``: neurons of speed ``c`` (eq. 18-20), stable relaxation.

    ``problem`` is the instantaneous-neuron problem of the other modes (or one whose
    network has a speed symbol: then used as it is); the parameters are mapped from
    the learning rate as for ``"dynamics"`` (:func:`dynamics_parameters`).

    Raises
    ------
    DeclarationError
        Bad options; ``c <= θ`` (the relaxation would not be stable).
    UnstableSystemError
        The relaxation is not stable at the initial state (checked on small systems).
    """
    from cognitive_action.compile.variants import stable_variant
    from cognitive_action.data.run import sample_step

    opts = _validated(options, DiffusionOptions)
    net = problem.network
    if isinstance(net, Network) and net.speed is not None:
        c_sym = net.speed
        problem_c = problem
    else:
        c_sym = sp.Symbol("c_speed", positive=True)
        problem_c = speed_problem(problem, c_sym)
    tau = opts.tau if opts.tau is not None else learning_rate * gamma
    _check_stream_tau(train, tau)
    vals, settings = dynamics_parameters(problem_c, learning_rate=learning_rate, tau=tau,
                                         theta=opts.theta, mass_ratio=opts.mass_ratio,
                                         values=values)
    th = settings["theta"]
    c = float(opts.speed) if isinstance(c_sym, sp.Symbol) else float(c_sym)
    if c <= th:
        raise DeclarationError(f"speed c = {c:g} <= theta = {th:g}: the relaxation's "
                               "multiplier block has eigenvalues θ - c", fix="give c > θ "
                               "(the diffusion law tends to backprop as c → ∞)")
    steps = opts.steps or max(1, math.ceil(tau * max(c, th)))
    if tau * max(c, th) / steps > _RK4_REAL_BOUND:
        raise DeclarationError(
            f"{steps} RK4 steps over tau = {tau:g} at speed c = {c:g}: h max(c, θ) = "
            f"{tau * max(c, th) / steps:.3g} is beyond RK4's stability bound "
            f"{_RK4_REAL_BOUND} (the run would blow up)",
            fix=f"give steps >= {math.ceil(tau * max(c, th) / _RK4_REAL_BOUND)} (default "
            f"{math.ceil(tau * max(c, th))}), or omit steps")
    if isinstance(c_sym, sp.Symbol):
        vals[str(c_sym)] = c
    kernel = kernel or compile_limit_law(_instantaneous(problem), values)
    system = compile_system(problem_c)
    sig = _signals(system, problem_c.network)
    fallback = {system.parameters[i]: 0.0 for i in sig}
    p = system.parameter_vector(vals, fallback=fallback)
    y0 = _initial_state(system, problem_c.network, seed)
    relaxed = stable_variant(system, "relaxation",
                             check_at=(0.0, y0, p) if system.n_states <= 400 else None)
    switch = _speed_switch(system, problem_c)
    step = sample_step(relaxed, tau, steps)
    y = ca.MX.sym("y", system.n_states)
    P = ca.MX.sym("p", system.n_parameters + 1)
    y_plus, g_res, gd_res = switch(P[-1], y, P[:-1])
    fn = ca.Function("presentation", [y, P], [step(y_plus, ca.MX(0, 1), P)[:, 1], g_res,
                                              gd_res])
    settings = settings | {"speed": c, "steps": steps, "variant": relaxed.variant,
                           "scheme": f"classical RK4, {steps} steps per presentation; "
                           "multipliers by the stable relaxation of eq. (20)"}
    compiled = _Compiled(fn, relaxed, p, sig, _weight_slice(system, problem_c.network), y0,
                         settings)
    config = {"mode": "diffusion", "learning_rate": float(learning_rate), "seed": int(seed),
              "batch": 1, "options": asdict(opts), "values": vals}
    return _run("diffusion", problem, train, test, compiled, kernel, epochs=epochs,
                seed=seed, out=out, resume=resume, progress=progress, config=config)


def _instantaneous(problem: Problem) -> Problem:
    """The instantaneous-neuron problem of a speed-``c`` one (for the metrics' kernel)."""
    net = problem.network
    if not isinstance(net, Network) or net.speed is None:
        return problem
    g = net.graph.copy()
    if net.bias is not None:
        g.remove_node(net.bias)
    acts = {j: net.activation_of(j) for j in net.computing
            if j != net.bias and net.activation_of(j) != net.default_activation}
    plain = Network(g, [i for i in net.inputs if i != net.bias], net.default_activation,
                    activations=acts, bias=net.bias is not None, outputs=net.outputs)
    action = problem.action
    return plain.problem(weight=action.weight,
                         loss=sp.simplify(-action.lagrangian / action.weight),
                         parameters=[q for q in problem.parameters if q != net.speed])


register_runner("dynamics", run_dynamics)
register_runner("diffusion", run_diffusion)
