"""Random weight initialisation: one registry of named initialisers.

Every place that draws initial weights (the problem-file workflow, the continuous
diffusion model of Section 2, the verifier's random states) draws them here, so one
name means one distribution everywhere and a problem file can choose it with
``[initial] init = "<name>"`` (default ``"normal_fan_in"``).

An initialiser is a function ``(rng, fan_in, scale) -> weights``: ``rng`` a
:class:`numpy.random.Generator`, ``fan_in`` an integer array with the fan-in (number of
incoming edges, at least 1) of the neuron each weight feeds, ``scale`` a positive
number; it returns one float per entry of ``fan_in``. Initialisers draw all weights
with one vectorised call of ``rng``, so a generator advances exactly as many scalar
draws would (the same numbers as drawing weight by weight).

=================  ==============================================  ===================
name               distribution of the weight into a neuron        variance
=================  ==============================================  ===================
``normal_fan_in``  ``N(0, scale² / fan_in)``                       ``scale²/fan_in``
``normal``         ``N(0, scale²)``                                ``scale²``
``uniform_fan_in`` ``U(-a, a)``, ``a = scale·√(3 / fan_in)``       ``scale²/fan_in``
``uniform``        ``U(-scale, scale)``                            ``scale²/3``
``zeros``          ``0`` (draws nothing)                           ``0``
=================  ==============================================  ===================

This module imports only NumPy (no SymPy, no CasADi), so the NumPy model of Section 2
can use it without the symbolic stack.

Examples
--------
>>> w = initialize([1, 4, 4], "normal_fan_in", scale=2.0, rng=0)
>>> w.shape
(3,)
>>> bool(np.all(w == initialize([1, 4, 4], "normal_fan_in", scale=2.0, rng=0)))
True
>>> initialize([2, 2], "zeros")
array([0., 0.])
>>> register_initializer("ones", lambda rng, fan_in, scale: np.full(len(fan_in), scale))
>>> initialize([3, 3], "ones", scale=0.5)
array([0.5, 0.5])
>>> unregister_initializer("ones")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cognitive_action.errors import DeclarationError

__all__ = ["DEFAULT_INITIALIZER", "Initializer", "available_initializers", "get_initializer",
           "initialize", "register_initializer", "unregister_initializer"]

Initializer = Callable[[np.random.Generator, np.ndarray, float], np.ndarray]
"""``(rng, fan_in, scale) -> weights``: see the module docstring."""

DEFAULT_INITIALIZER = "normal_fan_in"


def _normal_fan_in(rng: np.random.Generator, fan_in: np.ndarray, scale: float) -> np.ndarray:
    # (z * scale) / sqrt(fan_in), in this order: the numbers the CLI always drew
    return rng.standard_normal(len(fan_in)) * scale / np.sqrt(fan_in)


def _normal(rng: np.random.Generator, fan_in: np.ndarray, scale: float) -> np.ndarray:
    return rng.normal(0.0, scale, len(fan_in))


def _uniform_fan_in(rng: np.random.Generator, fan_in: np.ndarray, scale: float
                    ) -> np.ndarray:
    a = scale * np.sqrt(3.0 / fan_in)
    return rng.uniform(-1.0, 1.0, len(fan_in)) * a


def _uniform(rng: np.random.Generator, fan_in: np.ndarray, scale: float) -> np.ndarray:
    return rng.uniform(-scale, scale, len(fan_in))


def _zeros(rng: np.random.Generator, fan_in: np.ndarray, scale: float) -> np.ndarray:
    return np.zeros(len(fan_in))


_BUILTIN: dict[str, Initializer] = {
    "normal_fan_in": _normal_fan_in,
    "normal": _normal,
    "uniform_fan_in": _uniform_fan_in,
    "uniform": _uniform,
    "zeros": _zeros,
}
_REGISTRY: dict[str, Initializer] = dict(_BUILTIN)


def available_initializers() -> tuple[str, ...]:
    """The registered initialiser names, sorted.

    Returns
    -------
    tuple of str
    """
    return tuple(sorted(_REGISTRY))


def register_initializer(name: str, fn: Initializer, *, overwrite: bool = False) -> None:
    """Register a weight initialiser under ``name``.

    Parameters
    ----------
    name
        A non-empty identifier (letters, digits, ``_``), usable in problem files as
        ``[initial] init = "<name>"``.
    fn
        ``(rng, fan_in, scale) -> weights`` (see the module docstring).
    overwrite
        Replace an existing user initialiser of that name; the built-in ones
        cannot be replaced.

    Raises
    ------
    DeclarationError
        A bad name, a non-callable ``fn``, or a name already taken.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise DeclarationError(f"initialiser name {name!r} is not an identifier",
                               fix="use letters, digits and '_', e.g. 'my_init'")
    if not callable(fn):
        raise DeclarationError(f"initialiser {name!r} is not callable",
                               fix="pass a function (rng, fan_in, scale) -> weights")
    if name in _BUILTIN or (name in _REGISTRY and not overwrite):
        raise DeclarationError(f"an initialiser named {name!r} is already registered",
                               fix="choose another name" + (
                                   "" if name in _BUILTIN else " or pass overwrite=True"))
    _REGISTRY[name] = fn


def unregister_initializer(name: str) -> None:
    """Remove a user initialiser registered with :func:`register_initializer`.

    Raises
    ------
    DeclarationError
        ``name`` is built in or not registered.
    """
    if name in _BUILTIN:
        raise DeclarationError(f"{name!r} is a built-in initialiser",
                               fix="only user initialisers can be removed")
    get_initializer(name)
    del _REGISTRY[name]


def get_initializer(name: str) -> Initializer:
    """The initialiser registered as ``name``.

    Raises
    ------
    DeclarationError
        Unknown name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise DeclarationError(
            f"unknown weight initialiser {name!r}",
            fix=f"use one of {', '.join(available_initializers())}, or register it with "
            "cognitive_action.declare.initializers.register_initializer") from None


def initialize(fan_in: Sequence[int] | np.ndarray, init: str = DEFAULT_INITIALIZER, *,
               scale: float = 1.0, rng: int | np.random.Generator | None = 0
               ) -> np.ndarray:
    """Draw one initial weight per entry of ``fan_in``.

    Parameters
    ----------
    fan_in
        For each weight, the fan-in of the neuron it feeds (the in-degree in the
        network graph of eq. 4); values below 1 count as 1 (a neuron fed by nothing).
    init
        A registered initialiser name (:func:`available_initializers`).
    scale
        The scale of the distribution (see the table in the module docstring).
    rng
        A seed or a :class:`numpy.random.Generator`; a generator is advanced, so a
        caller can keep drawing from it afterwards.

    Returns
    -------
    numpy.ndarray
        Float weights, ``shape == (len(fan_in),)``.

    Raises
    ------
    DeclarationError
        Unknown ``init``, a non-finite or negative ``scale``, or an initialiser that
        returns the wrong shape.
    """
    fn = get_initializer(init)
    if isinstance(scale, bool) or not np.isfinite(scale) or scale < 0:
        raise DeclarationError(f"weight scale {scale!r} must be a finite number >= 0",
                               fix="use e.g. scale=1.0")
    fan = np.maximum(1, np.asarray(fan_in, dtype=int).reshape(-1))
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    w = np.asarray(fn(gen, fan, float(scale)), dtype=float)
    if w.shape != fan.shape:
        raise DeclarationError(f"initialiser {init!r} returned shape {w.shape} for "
                               f"{len(fan)} weights",
                               fix="return one weight per entry of fan_in")
    return w
