"""Solver options shared by :func:`simulate`, :func:`simulate_batch` and :func:`adjoint_sweep`.

One frozen dataclass, :class:`SolverOptions`, holds how a compiled system is integrated:
the method and its tolerances, the step controls, the constraint stabilization, the
checks before a run (consistent initial state, stability of the multiplier dynamics)
and the progress display. Every value is validated once, when the object is made, and a
bad value raises :class:`~cognitive_action.errors.CompileError` naming the field and a
fix. The three run functions take it as ``options=`` and accept its fields as keyword
overrides (``simulate(..., method="dopri", rtol=1e-8)`` is
``simulate(..., options=SolverOptions(method="dopri", rtol=1e-8))``); what only one
function needs (the batch grid, the sweep's iterations) stays in that function's own
signature. Checks that need the system (stabilization of a system without constraints)
run in :func:`check_for_system`.

Examples
--------
>>> import dataclasses
>>> opts = SolverOptions(method="dopri", rtol=1e-9)
>>> dataclasses.replace(opts, atol=1e-12).atol
1e-12
>>> try:
...     SolverOptions(rtol=-1.0)
... except ValueError as err:
...     print(err)
SolverOptions.rtol = -1.0: must be a positive finite number. Fix: e.g. rtol=1e-8
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import types
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from cognitive_action.errors import CompileError

__all__ = ["METHODS", "SolverOptions", "check_for_system", "resolve_options"]

#: Integration methods accepted by :func:`~cognitive_action.compile.simulate.simulate`.
METHODS = ("cvodes", "bdf", "adams", "idas", "dopri", "erk", "rk", "collocation")

_MULTISTEP = ("bdf", "adams")
_NEWTON = ("auto", "direct", "gmres", "functional")
_STABILIZATION = (None, "baumgarte", "projection", "both")
_STABILITY = ("auto", "raise", "warn", "ignore")
#: Where the ``dopri`` step loop runs (:func:`~cognitive_action.compile.c_loop.c_loop_for`).
LOOPS = ("python", "c")


@dataclass(frozen=True)
class SolverOptions:
    """How a compiled system is integrated (validated on construction).

    Parameters
    ----------
    method
        One of :data:`METHODS` (``"bdf"`` and ``"adams"`` are CVODES with that
        multistep method). :func:`simulate_batch` refuses ``"dopri"``;
        :func:`adjoint_sweep` runs ``"cvodes"``, ``"rk"`` or ``"collocation"``.
    rtol, atol
        Tolerances of the adaptive methods.
    multistep
        ``"bdf"`` or ``"adams"`` for CVODES (``None``: BDF, Adams for the method alias
        ``"adams"``).
    newton
        CVODES/IDAS nonlinear iterations: ``"direct"`` (Newton, sparse direct solve),
        ``"gmres"`` (Newton, matrix-free GMRES), ``"functional"`` (fixed-point, CVODES
        only), or ``"auto"``: functional for Adams, else direct up to 300 states and
        GMRES above.
    steps
        Fixed steps (``rk``, ``erk`` with fixed steps) or finite elements
        (``collocation``) per output interval; ``None``: 10 for ``rk``, 4 for
        ``collocation``, adaptive for ``erk``.
    max_steps
        Step limit of the adaptive methods.
    stabilization
        ``None``, ``"baumgarte"``, ``"projection"`` or ``"both"``.
    baumgarte
        The gains ``(α, β)`` of Baumgarte stabilization.
    project_every
        With projection, the number of output intervals between projections.
    stability
        For systems with multiplier states: ``"auto"``/``"raise"`` raise
        :class:`~cognitive_action.errors.UnstableSystemError` if the linearization at the
        initial state predicts a growth above ``e^18`` over the run, ``"warn"`` warns,
        ``"ignore"`` skips the check. ``"raise"`` also checks systems without multiplier
        states.
    max_norm
        A state norm above this counts as a blow-up.
    check_initial, initial_tol
        Reject initial states with ``|G|`` or ``|Ġ|`` above ``initial_tol``.
    progress
        Show a tqdm progress bar on stderr; ``None``: only on a terminal (and, for
        :func:`simulate`, for long runs).
    integrator_options
        Extra CasADi integrator options, overriding the ones set from the fields above
        (stored as a read-only copy).
    loop
        Where ``method="dopri"`` runs its adaptive step loop: ``"python"`` (a Python loop
        over compiled CasADi steps) or ``"c"`` (the whole loop and the drift report
        (``G``, ``Ġ``) as generated C, compiled once with the system's C compiler into the cache of
        :mod:`~cognitive_action.compile.codegen`; the same steps, outputs equal to
        round-off; see :mod:`~cognitive_action.compile.c_loop`). ``"c"`` needs a C
        compiler (else :class:`~cognitive_action.errors.CompileError` with a fix); with
        projection the Python loop runs. Ignored by the other methods. Not the default:
        the first run compiles C (then cached on disk), which the time saved per run
        repays only after about a thousand runs of a dense 10-neuron net
        (docs/performance.md, ``benchmarks/bench_peers.py``).

    Raises
    ------
    CompileError
        A field has a value outside its domain; the message names the field.
    """

    method: str = "cvodes"
    rtol: float = 1e-8
    atol: float = 1e-10
    multistep: str | None = None
    newton: str = "auto"
    steps: int | None = None
    max_steps: int = 100_000
    stabilization: str | None = None
    baumgarte: tuple[float, float] = (10.0, 10.0)
    project_every: int = 1
    stability: str = "auto"
    max_norm: float = 1e12
    check_initial: bool = True
    initial_tol: float = 1e-6
    progress: bool | None = None
    integrator_options: Mapping[str, object] | None = None
    loop: str = "python"

    def __post_init__(self) -> None:
        _choice(self, "method", METHODS, "unknown method")
        _positive(self, "rtol", "e.g. rtol=1e-8")
        _positive(self, "atol", "e.g. atol=1e-10")
        if self.multistep is not None and (not isinstance(self.multistep, str)
                                           or self.multistep.lower() not in _MULTISTEP):
            _fail("multistep", self.multistep, "unknown multistep method",
                  "use 'bdf' or 'adams' (or None)")
        _choice(self, "newton", _NEWTON, "unknown Newton scheme")
        if self.steps is not None:
            _count(self, "steps", "give the number of steps per output interval, or None")
        _count(self, "max_steps", "e.g. max_steps=100000")
        _choice(self, "stabilization", _STABILIZATION, "unknown stabilization")
        gains = self.baumgarte
        if (isinstance(gains, (str, bytes)) or not hasattr(gains, "__len__") or len(gains) != 2
                or not all(_real(g) and math.isfinite(g) for g in gains)):
            _fail("baumgarte", gains, "must be two finite numbers (alpha, beta)",
                  "e.g. baumgarte=(10.0, 10.0)")
        object.__setattr__(self, "baumgarte", (float(gains[0]), float(gains[1])))
        _count(self, "project_every", "give a number of output intervals")
        _choice(self, "stability", _STABILITY, "unknown stability option")
        _choice(self, "loop", LOOPS, "unknown step loop")
        if not (_real(self.max_norm) and self.max_norm > 0):
            _fail("max_norm", self.max_norm, "must be a positive number",
                  "e.g. max_norm=1e12 (math.inf disables the check)")
        if not _boolean(self.check_initial):
            _fail("check_initial", self.check_initial, "must be True or False",
                  "pass check_initial=False to skip the check")
        object.__setattr__(self, "check_initial", bool(self.check_initial))
        if not (_real(self.initial_tol) and math.isfinite(self.initial_tol)
                and self.initial_tol >= 0):
            _fail("initial_tol", self.initial_tol, "must be a finite number >= 0",
                  "e.g. initial_tol=1e-6")
        if self.progress is not None:
            if not _boolean(self.progress):
                _fail("progress", self.progress, "must be True, False or None",
                      "None shows a bar only on a terminal")
            object.__setattr__(self, "progress", bool(self.progress))
        extra = self.integrator_options
        if extra is not None:
            if not isinstance(extra, Mapping) or not all(isinstance(k, str) for k in extra):
                _fail("integrator_options", extra,
                      "must be a mapping of CasADi option names to values",
                      "e.g. integrator_options={'max_order': 3}")
            object.__setattr__(self, "integrator_options",
                               types.MappingProxyType(dict(extra)))

    def __hash__(self) -> int:
        # the generated hash would fail on the read-only mapping of integrator_options
        return hash(tuple(
            tuple(sorted((k, repr(v)) for k, v in value.items()))
            if isinstance(value, Mapping) else value
            for value in (getattr(self, f.name) for f in fields(self))))

    def changed(self) -> tuple[str, ...]:
        """Names of the fields whose values differ from the defaults."""
        default = _DEFAULT
        return tuple(f.name for f in fields(self)
                     if not _same(getattr(self, f.name), getattr(default, f.name)))


def _same(a, b) -> bool:
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return dict(a or {}) == dict(b or {})
    return a == b


def _boolean(v) -> bool:
    return isinstance(v, (bool, np.bool_))


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and not math.isnan(v)


def _fail(name: str, value, what: str, fix: str):
    raise CompileError(f"SolverOptions.{name} = {value!r}: {what}", fix=fix)


def _choice(opts: SolverOptions, name: str, allowed: tuple, what: str) -> None:
    value = getattr(opts, name)
    try:
        ok = value in allowed
    except TypeError:  # unhashable or incomparable values
        ok = False
    if not ok:
        shown = ", ".join("None" if a is None else repr(a) for a in allowed)
        _fail(name, value, f"{what} {value!r}", f"use one of {shown}")


def _positive(opts: SolverOptions, name: str, fix: str) -> None:
    value = getattr(opts, name)
    if not (_real(value) and math.isfinite(value) and value > 0):
        _fail(name, value, "must be a positive finite number", fix)


def _count(opts: SolverOptions, name: str, fix: str) -> None:
    value = getattr(opts, name)
    if not (_real(value) and int(value) == value and value >= 1):
        _fail(name, value, "must be a positive integer", fix)


_DEFAULT = SolverOptions()

#: The field names of :class:`SolverOptions`, in declaration order.
FIELDS = tuple(f.name for f in fields(SolverOptions))


def resolve_options(caller: str, options: SolverOptions | None, overrides: Mapping[str, object],
                    default: SolverOptions = _DEFAULT) -> SolverOptions:
    """The options a run function works with: ``options`` (or the function's ``default``)
    with the keyword ``overrides`` applied.

    Parameters
    ----------
    caller
        The function's name, for the messages.
    options
        What the user passed as ``options=``.
    overrides
        The remaining keyword arguments of the call: fields of :class:`SolverOptions`.
    default
        The options used when ``options`` is ``None``.

    Raises
    ------
    TypeError
        A keyword is not a field of :class:`SolverOptions` (the message lists them).
    CompileError
        ``options`` is not a :class:`SolverOptions`, or an override has a bad value.
    """
    unknown = [k for k in overrides if k not in FIELDS]
    if unknown:
        hints = [difflib.get_close_matches(k, FIELDS, n=1) for k in unknown]
        near = "; ".join(f"{k!r}: did you mean {h[0]!r}?" for k, h in zip(unknown, hints) if h)
        raise TypeError(
            f"{caller}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}"
            + (f" ({near})" if near else "")
            + f"; the solver options are {', '.join(FIELDS)}")
    if options is None:
        options = default
    elif not isinstance(options, SolverOptions):
        raise CompileError(
            f"{caller}(options=...) takes a SolverOptions, got {type(options).__name__}",
            fix="pass options=SolverOptions(method=..., rtol=...) or the fields as keywords; "
            "extra CasADi integrator options go in SolverOptions(integrator_options={...})")
    return dataclasses.replace(options, **overrides) if overrides else options


def check_for_system(options: SolverOptions, system) -> None:
    """The checks of ``options`` that need the compiled ``system``.

    Raises
    ------
    CompileError
        Stabilization of a system without constraints.
    """
    if options.stabilization and system.constraints is None:
        raise CompileError(f"{system.name!r} has no constraints to stabilize",
                           fix="drop the stabilization option")
