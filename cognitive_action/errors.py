"""Typed exceptions of cognitive_action.

Every error the library raises on bad input derives from :class:`CognitiveActionError`
and carries a message that says what was wrong and how to fix it. No SymPy or CasADi
traceback should reach a user for a mistake in their declaration.

Examples
--------
>>> from cognitive_action.errors import DeclarationError
>>> err = DeclarationError("unknown symbol 'mx'", fix="declare it as a parameter")
>>> print(err)
unknown symbol 'mx'. Fix: declare it as a parameter
>>> isinstance(err, ValueError)
True
"""

from __future__ import annotations

__all__ = [
    "CognitiveActionError",
    "DeclarationError",
    "ShapeError",
    "ActivationError",
    "GraphError",
    "DerivationError",
    "InconsistentInitialConditionsError",
    "RankDeficiencyError",
    "ProblemFileError",
    "UnsafeExpressionError",
    "SimulationError",
    "OptionalDependencyError",
    "DataError",
    "CompileError",
    "TranslationError",
    "UnstableSystemError",
    "VerificationError",
    "SweepError",
    "FixedPointError",
    "OutputError",
    "PhysicalError",
    "InterruptedRunError",
]


class CognitiveActionError(Exception):
    """Base class of every error raised by cognitive_action.

    Parameters
    ----------
    message
        What was wrong.
    fix
        How to fix it; appended to the message as ``Fix: ...``.
    """

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        text = message if fix is None else f"{message}. Fix: {fix}"
        super().__init__(text)


class DeclarationError(CognitiveActionError, ValueError):
    """A learning law was declared wrongly: unknown symbols, empty constraints, ..."""


class ShapeError(DeclarationError):
    """Sizes that must agree do not (masses against coordinates, inputs against neurons)."""


class ActivationError(DeclarationError):
    """An activation is not a usable C² function where derivatives are needed."""


class GraphError(DeclarationError):
    """A network digraph is malformed (edge into an input neuron, self-loop, ...)."""


class DerivationError(CognitiveActionError, ValueError):
    """The derivation cannot proceed (singular mass matrix, order above two, ...)."""


class PhysicalError(DerivationError):
    """Masses, a mass matrix or initial values that are not physical at the point where
    a run would start (a negative or zero mass, a singular mass matrix, NaN).

    Attributes
    ----------
    symbols
        Names of the parameters involved (a mass given as a parameter), if any.
    """

    def __init__(self, message: str, fix: str | None = None, *,
                 symbols: tuple[str, ...] = ()) -> None:
        super().__init__(message, fix)
        self.symbols = tuple(symbols)


class InconsistentInitialConditionsError(CognitiveActionError, ValueError):
    """Initial conditions violate the constraints or their first time derivative (eq. 11).

    Attributes
    ----------
    violated
        Names of the violated constraints with their residuals.
    """

    def __init__(self, message: str, fix: str | None = None,
                 violated: dict[str, float] | None = None) -> None:
        super().__init__(message, fix)
        self.violated = dict(violated or {})


class RankDeficiencyError(CognitiveActionError, ValueError):
    """The constraint Jacobian is rank deficient where full rank is required (Prop. 1)."""


class ProblemFileError(CognitiveActionError, ValueError):
    """A problem file is malformed: syntax, schema, types or missing fields.

    Attributes
    ----------
    path, field
        Where the problem is, when known.
    """

    def __init__(self, message: str, fix: str | None = None, *, path: str | None = None,
                 field: str | None = None) -> None:
        where = ":".join(p for p in (path, field) if p)
        super().__init__(f"{where}: {message}" if where else message, fix)
        self.path = path
        self.field = field


class UnsafeExpressionError(ProblemFileError):
    """An expression string uses a construct outside the whitelist (never executed)."""


class SimulationError(CognitiveActionError, RuntimeError):
    """An integration failed, produced NaN or blew up.

    Attributes
    ----------
    time
        The time reached.
    state_norm
        Norm of the state at that time.
    """

    def __init__(self, message: str, fix: str | None = None, *, time: float | None = None,
                 state_norm: float | None = None) -> None:
        super().__init__(message, fix)
        self.time = time
        self.state_norm = state_norm


class CompileError(CognitiveActionError, ValueError):
    """A derived system cannot be compiled or run as given (missing parameter values,
    a state vector of the wrong length, an unknown option)."""


class TranslationError(CompileError):
    """A SymPy expression uses a node the CasADi translator does not support."""


class UnstableSystemError(SimulationError):
    """The system is unstable forward in time where it should not be integrated forward.

    Raised before integrating, from the eigenvalues of the linearization (design notes:
    eq. 20 is anti-stable forward in time).

    Attributes
    ----------
    eigenvalue
        The eigenvalue with the largest real part.
    growth
        ``max Re λ · (t_f - t_0)``: the predicted log growth factor over the run.
    """

    def __init__(self, message: str, fix: str | None = None, *, time: float | None = None,
                 state_norm: float | None = None, eigenvalue: complex | None = None,
                 growth: float | None = None) -> None:
        super().__init__(message, fix, time=time, state_norm=state_norm)
        self.eigenvalue = eigenvalue
        self.growth = growth


class OptionalDependencyError(CognitiveActionError, ImportError):
    """An optional package (such as xarray or matplotlib) is needed and not installed."""


class DataError(CognitiveActionError, ValueError):
    """A data stream is unusable (NaN or infinite values, a shape that does not fit the
    network, labels out of range, a presentation time ``tau <= 0``), raised before any
    work starts.

    Attributes
    ----------
    field
        Where the problem is, e.g. ``inputs[3, 5]`` or ``tau``.

    Examples
    --------
    >>> err = DataError("not finite: nan", fix="drop or impute it", field="inputs[3, 5]")
    >>> print(err)
    inputs[3, 5]: not finite: nan. Fix: drop or impute it
    >>> err.field, isinstance(err, ValueError)
    ('inputs[3, 5]', True)
    """

    def __init__(self, message: str, fix: str | None = None, *, field: str | None = None
                 ) -> None:
        super().__init__(f"{field}: {message}" if field else message, fix)
        self.field = field


class VerificationError(CognitiveActionError, AssertionError):
    """A verification assertion failed (``verify.assert_*``); the message is a readable
    table of the failed checks. An ``AssertionError``, so pytest reports it as a failed
    assertion.

    Examples
    --------
    >>> isinstance(VerificationError("backprop limit not reached"), AssertionError)
    True
    """


class SweepError(CognitiveActionError, ValueError):
    """A parameter sweep is malformed (unknown or empty axis, wrong type, a scheduler that
    does not answer, a store holding another sweep); raised before any point runs.

    Attributes
    ----------
    field
        The field of the sweep spec at fault (``"axes.theta"``, ``"scheduler"``, ...).

    Examples
    --------
    >>> err = SweepError("axis 'mu' is not a parameter", fix="use one of m, k", field="axes.mu")
    >>> print(err)
    axes.mu: axis 'mu' is not a parameter. Fix: use one of m, k
    """

    def __init__(self, message: str, fix: str | None = None, *,
                 field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message, fix)
        self.field = field


class FixedPointError(SimulationError):
    """A phase of an energy model has no usable fixed point: the relaxation
    ``ẋ = -∂(E + βC)/∂x`` diverged (an energy not bounded below), did not settle, or
    stopped where ``E + βC`` is not a minimum (a Hessian that is not positive definite).

    Attributes
    ----------
    beta
        The nudging of the phase (0 for the free phase).
    residual
        ``max |∂(E + βC)/∂x|`` where it stopped.
    min_eigenvalue
        Smallest eigenvalue of the Hessian ``∂²(E + βC)/∂x²`` there (None if not reached).
    """

    def __init__(self, message: str, fix: str | None = None, *, beta: float = 0.0,
                 residual: float | None = None, min_eigenvalue: float | None = None,
                 time: float | None = None, state_norm: float | None = None) -> None:
        super().__init__(message, fix, time=time, state_norm=state_norm)
        self.beta = beta
        self.residual = residual
        self.min_eigenvalue = min_eigenvalue


class OutputError(CognitiveActionError, OSError):
    """The output folder cannot be used (not a folder, not writable, full); raised
    before any work starts, so no derivation or simulation is lost.

    Attributes
    ----------
    path
        The folder at fault.

    Examples
    --------
    >>> err = OutputError("cannot write in results", fix="pick another --out",
    ...                   path="results")
    >>> print(err)
    cannot write in results. Fix: pick another --out
    >>> err.path, isinstance(err, OSError)
    ('results', True)
    """

    def __init__(self, message: str, fix: str | None = None, *, path: str | None = None
                 ) -> None:
        super().__init__(message, fix)
        self.path = path


class InterruptedRunError(CognitiveActionError, KeyboardInterrupt):
    """A run was interrupted (Ctrl-C, ``SIGINT``) between two chunks of its work; what
    was completed is kept.

    A ``KeyboardInterrupt``, so code that does not know it stops as on any Ctrl-C.

    Attributes
    ----------
    partial
        The completed part of the run (a ``Simulation`` up to :attr:`time`), or ``None``.
    time
        How far the run got.
    resume
        What a run needs to continue (a ``compile.simulate.Checkpoint``), or ``None``.
    checkpoint
        The file where the completed part was saved, when it was.
    """

    def __init__(self, message: str, fix: str | None = None, *, partial: object = None,
                 time: float | None = None, resume: object = None,
                 checkpoint: object = None) -> None:
        super().__init__(message, fix)
        self.partial = partial
        self.time = time
        self.resume = resume
        self.checkpoint = checkpoint
