"""The full derived dynamics of a compiled system over a data stream.

The system is compiled once with the stream's signals left as constant runtime
parameters (``compile_system(problem)`` without ``signals=``). :func:`run_stream` then,
for every sample, writes the sample into the parameter vector and integrates over
``[t_k, t_k + τ]`` with one integrator in shifted time
(:func:`~cognitive_action.compile.integration.chunk_function`), built once for the
relative grid ``[0, τ]`` and re-called through a CasADi buffer: the build cost does not
depend on the number of samples.

At a switch of sample the inputs jump, so the neuron outputs ``x`` jump to the new
forward pass (or fixed point) and ``ẋ`` to the solution of ``G_ξ ẋ = -(G_W Ẇ + G_t)``;
weights and weight velocities are continuous. :func:`consistent_state` compiles this
map once per system: Newton steps on ``G(x) = 0`` (the Jacobian ``∂G/∂x`` by CasADi's AD
of the compiled constraints, a sparse LU solve) unrolled as many times as the network
is deep, then the linear solve for ``ẋ``; no symbolic solve per sample. Every switch is
reported (:class:`SwitchReport`): the size of the jump in ``x`` and ``ẋ`` and the
residuals ``|G|``, ``|Ġ|`` after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import casadi as ca
import networkx as nx
import numpy as np

from cognitive_action.compile.integration import (
    chunk_function,
    implicit_method,
    integrator_spec,
    quiet,
)
from cognitive_action.compile.options import SolverOptions
from cognitive_action.compile.system import CompiledSystem
from cognitive_action.data.streams import Stream
from cognitive_action.errors import (
    DataError,
    InconsistentInitialConditionsError,
    SimulationError,
)

__all__ = ["StreamRun", "SwitchReport", "consistent_state", "run_stream", "sample_step"]

_SUPPORTED = ("cvodes", "rk", "erk", "collocation")


@dataclass(frozen=True)
class SwitchReport:
    """One switch of sample: where, how large the jump, and the residuals after it.

    Attributes
    ----------
    step
        The position of the sample in the run (0 for the first).
    sample
        The index of the sample in the stream.
    time
        The switch time ``t_k``.
    jump_x, jump_xdot
        ``max |Δx|`` and ``max |Δẋ|`` of the re-initialisation.
    g_residual, gdot_residual
        ``max |G|`` and ``max |Ġ|`` after it (compiled constraints).
    """

    step: int
    sample: int
    time: float
    jump_x: float
    jump_xdot: float
    g_residual: float
    gdot_residual: float


@dataclass
class StreamRun:
    """The result of :func:`run_stream`.

    Attributes
    ----------
    final
        The state at the end of the run (in the order of ``system.states``).
    times
        The end time of every sample.
    states
        The state at the end of every sample (``steps × n_states``), or ``None`` when not
        recorded.
    switches
        One :class:`SwitchReport` per sample (empty without re-initialisation).
    integrators_built
        How many integrators this run constructed (``0`` or ``1``: one per presentation
        time and solver settings, cached on the system).
    build_time
        Seconds spent building the integrator and the re-initialisation map.
    """

    final: np.ndarray
    times: np.ndarray
    states: np.ndarray | None
    switches: list[SwitchReport] = field(default_factory=list)
    integrators_built: int = 0
    build_time: float = 0.0

    def max_residuals(self) -> tuple[float, float]:
        """The largest ``|G|`` and ``|Ġ|`` after any switch."""
        if not self.switches:
            return 0.0, 0.0
        return (max(s.g_residual for s in self.switches),
                max(s.gdot_residual for s in self.switches))


# -- consistency at a switch ------------------------------------------------------------------
def _neuron_positions(system: CompiledSystem, network: Any) -> tuple[list[int], list[int]]:
    """Positions in ``y`` of the neuron outputs and of their velocities."""
    names = [str(x) for x in network.neurons]
    missing = [n for n in names if n not in system.coordinates]
    if missing or system.constraints is None:
        raise DataError(f"the compiled system {system.name!r} has no neuron coordinates "
                        f"{', '.join(missing[:4])}", fix="compile the problem of the network "
                        "the stream was built for", field="system")
    pos = [system.coordinates.index(n) for n in names]
    vel = [system.states.index(system.velocities[i]) for i in pos]
    return [system.states.index(n) for n in names], vel


def _newton_steps(network: Any) -> int:
    """Newton steps that are exact for a feedforward net (one per layer, plus one), a
    fixed number for a net with cycles (the caller iterates to convergence)."""
    if network.is_feedforward:
        return int(nx.dag_longest_path_length(network.graph)) + 2
    return 8


def _sparse_lu() -> str:
    try:
        return "csparse" if ca.has_linsol("csparse") else "qr"
    except Exception:  # noqa: BLE001 (a missing plugin library raises)
        return "qr"


def _residual(system: CompiledSystem, S: ca.DM, keep: np.ndarray, nu: int) -> ca.Function:
    """``(t, y, p, x) → (G, ∂G/∂x)`` with ``x`` put in place of the neuron outputs of
    ``y``: on the constraints expanded to a scalar SX graph when they allow it (its
    sparse Jacobian is far cheaper to evaluate than AD through the MX matrix graph),
    else on the MX graph."""
    constraints = system.constraints
    kind = ca.MX
    try:
        constraints = constraints.expand()
        kind = ca.SX
    except RuntimeError:  # a node SX cannot hold: stay in MX
        pass
    t, y, p = kind.sym("t"), kind.sym("y", system.n_states), kind.sym("p", system.n_parameters)
    xs = kind.sym("x", nu)
    G, _ = constraints(t, y * ca.DM(keep) + ca.mtimes(S, xs), p)
    return ca.Function("residual", [t, y, p, xs], [G, ca.jacobian(G, xs)])


def consistent_state(system: CompiledSystem, network: Any) -> ca.Function:
    """The map ``(t, y, p) → (y⁺, G, Ġ)`` onto the constraints at a switch of sample.

    ``x`` becomes the forward pass (fixed point) of the current inputs by Newton's
    method on ``G(t, x, W) = 0`` (unrolled: exact for a feedforward net), ``ẋ`` the
    solution of ``∂G/∂x ẋ = -Ġ|_{ẋ=0}``; weights and their velocities are kept. Built
    once per system and cached on it.

    Parameters
    ----------
    system
        A compiled network system (network or generic route).
    network
        Its :class:`~cognitive_action.declare.network.Network`.

    Returns
    -------
    casadi.Function
        Outputs ``y_plus`` and the residuals ``G``, ``Gdot`` there.

    Raises
    ------
    DataError
        If the system has no coordinates for the network's neurons.

    Examples
    --------
    >>> import numpy as np
    >>> from cognitive_action.compile import compile_system
    >>> from cognitive_action.declare.network import chain
    >>> net = chain(2)
    >>> sys = compile_system(net.problem())
    >>> f = consistent_state(sys, net)
    >>> p = sys.parameter_vector({"m_x": 1.0, "m_W": 1.0, "e1": 0.5, "y2": 0.0})
    >>> y = np.zeros(sys.n_states); y[sys.states.index("w2_1")] = 2.0
    >>> yp, G, Gd = (np.asarray(v).ravel() for v in f(0.0, y, p))
    >>> float(round(yp[sys.states.index("x2")] - np.tanh(1.0), 14)), float(abs(G).max())
    (0.0, 0.0)
    """
    ix, ixd = _neuron_positions(system, network)
    key = "stream_consistent_state"
    hit = system._cache.get(key)
    if hit is not None:
        return hit
    n_y, n_p, nu = system.n_states, system.n_parameters, len(ix)
    S = ca.DM(ca.Sparsity.triplet(n_y, nu, ix, list(range(nu))), 1.0)
    Sd = ca.DM(ca.Sparsity.triplet(n_y, nu, ixd, list(range(nu))), 1.0)
    keep = np.ones(n_y)
    keep[ix] = 0.0
    keep_d = np.ones(n_y)
    keep_d[ixd] = 0.0
    residual = _residual(system, S, keep, nu)
    t, y, p = ca.MX.sym("t"), ca.MX.sym("y", n_y), ca.MX.sym("p", n_p)
    lsolver = _sparse_lu()
    x = y[ix]
    for _ in range(_newton_steps(network)):
        Gk, Jk = residual(t, y, p, x)
        x = x - ca.solve(Jk, Gk, lsolver)
    y1 = y * ca.DM(keep) * ca.DM(keep_d) + ca.mtimes(S, x)  # ẋ = 0 here
    _, Gd0 = system.constraints(t, y1, p)
    _, J = residual(t, y, p, x)
    y2 = y1 - ca.mtimes(Sd, ca.solve(J, Gd0, lsolver))  # Ġ is linear in ẋ
    G2, Gd2 = system.constraints(t, y2, p)
    hit = ca.Function("consistent_state", [t, y, p], [y2, G2, Gd2], ["t", "y", "p"],
                      ["y_plus", "G", "Gdot"])
    system._cache[key] = hit
    return hit


# -- the run ----------------------------------------------------------------------------------
def _signal_positions(system: CompiledSystem, stream: Stream) -> list[int]:
    missing = [n for n in stream.signal_names if n not in system.parameters]
    if missing:
        raise DataError(f"the signals {', '.join(missing[:6])} are not runtime parameters of "
                        f"{system.name!r} (given as expressions of t when it was compiled?)",
                        fix="compile the problem without signals=... so that the stream "
                        "sets them per sample", field="system")
    return [system.parameters.index(n) for n in stream.signal_names]


def _chunk_keys(system: CompiledSystem) -> int:
    return sum(1 for k in system._cache if isinstance(k, tuple) and k
               and k[0] in ("chunk", "stream_rk4"))


def sample_step(system: CompiledSystem, tau: float, steps: int) -> ca.Function:
    """Classical Runge-Kutta over one presentation, ``(y, p, t_k) → [y, y(t_k + τ)]``:
    ``steps`` RK4 steps of ``system.rhs`` unrolled into one CasADi function (cached on
    the system), with the call signature of a shifted-time integrator over ``[0, τ]``.

    CasADi's ``rk`` integrator computes the Jacobian sparsity of the right-hand side
    when it is built, which for the densely coupled learning system (eq. 10) dominates
    the build (the same reason as :mod:`~cognitive_action.compile.explicit`); this
    function queries no derivative.

    >>> import numpy as np
    >>> from cognitive_action.compile import compile_system
    >>> from cognitive_action.declare.network import chain
    >>> sys = compile_system(chain(2).problem())
    >>> f = sample_step(sys, 0.5, 4)
    >>> f.name_in(), f.name_out()
    (['x0', 'z0', 'p'], ['xf'])
    """
    key = ("stream_rk4", float(tau), int(steps))
    hit = system._cache.get(key)
    if hit is not None:
        return hit
    n_y, n_p = system.n_states, system.n_parameters
    y = ca.MX.sym("y", n_y)
    P = ca.MX.sym("p", n_p + 1)
    p, tk = P[:n_p], P[n_p]
    h = float(tau) / int(steps)
    cur = y
    for i in range(int(steps)):
        t = tk + i * h
        k1 = system.rhs(t, cur, p)
        k2 = system.rhs(t + h / 2, cur + h / 2 * k1, p)
        k3 = system.rhs(t + h / 2, cur + h / 2 * k2, p)
        k4 = system.rhs(t + h, cur + h * k3, p)
        cur = cur + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    hit = ca.Function("sample_step", [y, ca.MX(0, 1), P], [ca.horzcat(y, cur)],
                      ["x0", "z0", "p"], ["xf"])
    system._cache[key] = hit
    return hit


def run_stream(system: CompiledSystem, stream: Stream, y0: Mapping[str, float] | np.ndarray,
               values: Mapping[str, float], *, epochs: int = 1, t0: float = 0.0,
               options: SolverOptions | None = None, reinit: bool = True,
               record: bool = True, tol: float = 1e-10, max_reinit: int = 10
               ) -> StreamRun:
    """Integrate the compiled dynamics over every sample of ``stream``, epoch by epoch.

    Parameters
    ----------
    system
        A compiled network system whose stream signals are runtime parameters.
    stream
        The samples (:class:`~cognitive_action.data.streams.Stream`); sample ``k`` of the
        run is presented on ``[t0 + k τ, t0 + (k+1) τ]``, piecewise-constant.
    y0
        The initial state (by name or as a vector); made consistent at the first switch.
    values
        The other parameters (masses, ``θ``, ...), by name.
    epochs
        Passes over the stream, each in ``stream.epoch_order(epoch)``.
    t0
        Start time.
    options
        Integrator settings (:class:`~cognitive_action.compile.options.SolverOptions`;
        default CVODES BDF). ``cvodes``, ``erk`` and ``collocation`` run CasADi's
        integrator; ``rk`` runs ``steps`` (default 10) classical Runge-Kutta steps per
        sample compiled into one function (:func:`sample_step`: no Jacobian pass, the
        fastest to build and to run; small masses and large ``θ`` make the system stiff,
        so give enough steps). The Baumgarte gains apply when ``stabilization`` asks for
        them.
    reinit
        Make the state consistent at every switch (:func:`consistent_state`).
    record
        Keep the state at the end of every sample.
    tol
        The largest ``|G|`` accepted after a re-initialisation; more Newton rounds run
        (up to ``max_reinit``) for nets with cycles.

    Returns
    -------
    StreamRun

    Raises
    ------
    DataError
        The stream's signals are not runtime parameters of the system, or its
        interpolated mode (not supported by the runner).
    CompileError
        A missing parameter value, an unsupported method.
    InconsistentInitialConditionsError
        No consistent state found at a switch.
    SimulationError
        The integrator failed on a sample (its time is reported).
    """
    import time as _time

    from cognitive_action.errors import CompileError

    opts = options or SolverOptions()
    if stream.interpolate:
        raise DataError("the runner presents samples piecewise-constant",
                        fix="build the stream with interpolate=False", field="interpolate")
    spec = integrator_spec(system, opts)
    if spec.method not in _SUPPORTED:
        raise CompileError(f"run_stream does not run the method {opts.method!r}",
                           fix=f"use one of {', '.join(_SUPPORTED)}")
    if int(epochs) != epochs or epochs < 1:
        raise DataError(f"epochs = {epochs!r}", fix="give a positive integer", field="epochs")
    sig = _signal_positions(system, stream)
    V0 = stream.values(stream.epoch_order(0))
    gains = opts.baumgarte if opts.stabilization in ("baumgarte", "both") else (0.0, 0.0)
    pv = system.parameter_vector(values, fallback=dict(zip(stream.signal_names, V0[0])),
                                 baumgarte=gains)
    y = system.state_vector(y0).copy()
    net = stream.network
    t_build = _time.perf_counter()
    before = _chunk_keys(system)
    own_step = spec.method == "rk"
    if own_step:
        fn = sample_step(system, stream.tau, spec._steps())
    else:
        fn = chunk_function(system, spec, np.array([0.0, stream.tau]))
    built = _chunk_keys(system) - before
    reinit_fn = consistent_state(system, net) if reinit else None
    build_time = _time.perf_counter() - t_build

    n_y, n_p = system.n_states, system.n_parameters
    x0 = np.zeros(n_y)
    p_int = np.zeros(n_p + 1)
    p_int[:n_p] = pv
    out = np.zeros(2 * n_y)
    fb, integrate = fn.buffer()
    fb.set_arg(0, memoryview(x0))
    fb.set_arg(2, memoryview(p_int))
    fb.set_res(0, memoryview(out))
    tb = np.zeros(1)
    y_plus, g_out, gd_out = np.zeros(n_y), np.zeros(len(system.constraint_names)), \
        np.zeros(len(system.constraint_names))
    if reinit_fn is not None:
        rb, reinit_eval = reinit_fn.buffer()
        rb.set_arg(0, memoryview(tb))
        rb.set_arg(1, memoryview(x0))
        rb.set_arg(2, memoryview(p_int[:n_p]))
        rb.set_res(0, memoryview(y_plus))
        rb.set_res(1, memoryview(g_out))
        rb.set_res(2, memoryview(gd_out))
    ix, ixd = _neuron_positions(system, net)

    n = len(stream)
    total = n * int(epochs)
    times = t0 + stream.tau * np.arange(1, total + 1)
    states = np.zeros((total, n_y)) if record else None
    switches: list[SwitchReport] = []
    step = 0
    for epoch in range(int(epochs)):
        order = stream.epoch_order(epoch)
        V = stream.values(order)
        for k in range(n):
            t_k = t0 + stream.tau * step
            p_int[sig] = V[k]
            p_int[n_p] = t_k
            x0[:] = y
            if reinit_fn is not None:
                tb[0] = t_k
                for _ in range(max_reinit):
                    reinit_eval()
                    done = np.max(np.abs(g_out), initial=0.0) <= tol
                    if done:
                        break
                    x0[:] = y_plus
                if not done or not np.all(np.isfinite(y_plus)):
                    raise InconsistentInitialConditionsError(
                        f"no consistent state at the switch to sample {int(order[k])} "
                        f"(t = {t_k:g}): max |G| = {np.max(np.abs(g_out)):.3g}",
                        fix="give smaller weights (a contracting network has one fixed "
                        "point) or raise max_reinit",
                        violated={"G": float(np.max(np.abs(g_out)))})
                switches.append(SwitchReport(
                    step, int(order[k]), float(t_k),
                    float(np.max(np.abs(y_plus[ix] - y[ix]))),
                    float(np.max(np.abs(y_plus[ixd] - y[ixd]))),
                    float(np.max(np.abs(g_out), initial=0.0)),
                    float(np.max(np.abs(gd_out), initial=0.0))))
                x0[:] = y_plus
            if own_step:
                integrate()  # compiled arithmetic only: nothing to silence
            else:
                with quiet():
                    integrate()
            if fb.ret() != 0 or not np.all(np.isfinite(out[n_y:])):
                raise SimulationError(
                    f"{spec.label} failed on sample {int(order[k])} (t = {t_k:g} .. "
                    f"{t_k + stream.tau:g})",
                    fix="tighter tolerances, a larger max_steps or smaller presentation "
                    "times" if implicit_method(spec) else "use an implicit method (cvodes "
                    "BDF), tighter tolerances or smaller presentation times",
                    time=float(t_k), state_norm=float(np.linalg.norm(x0)))
            y = out[n_y:].copy()
            if states is not None:
                states[step] = y
            step += 1
    return StreamRun(final=y, times=times, states=states, switches=switches,
                     integrators_built=built, build_time=build_time)
