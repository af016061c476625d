"""Numeric activations σ, their derivatives σ', and output losses V for Section 2.

The time-delay model (1) applies ``σ`` elementwise; the backward wave (the system after
eq. 2) multiplies by ``σ'``; the output delta needs ``∂V/∂x_L``. These are plain NumPy
versions. Activations come from the one registry,
:mod:`cognitive_action.declare.activations` (which does not load SymPy for them):
:func:`get_activation` returns the NumPy half of an entry.

Examples
--------
>>> import numpy as np
>>> act = get_activation("logistic")
>>> float(act.f(0.0)), float(act.df(0.0))
(0.5, 0.25)
>>> get_loss("squared").grad(np.array([1.0, 2.0]), np.array([0.5, 2.0]))
array([0.5, 0. ])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cognitive_action.declare.activations import Activation as _Activation
from cognitive_action.declare.activations import NumericActivation, activation
from cognitive_action.errors import DeclarationError

__all__ = ["NumericActivation", "Loss", "LOSSES", "get_activation", "get_loss"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Loss:
    """A per-frame output loss ``V(x_L, y)`` with its gradient in ``x_L``.

    Attributes
    ----------
    name
        Name used in reports.
    value
        ``V(x, y)``, summed over the last axis.
    grad
        ``∂V/∂x``, same shape as ``x``.
    """

    name: str
    value: Callable[[Array, Array], Array]
    grad: Callable[[Array, Array], Array]


LOSSES: dict[str, Loss] = {
    # V = ½‖x − y‖²: the usual regression loss.
    "squared": Loss("squared", lambda x, y: 0.5 * np.sum((x - y) ** 2, axis=-1),
                    lambda x, y: x - y),
    # V = −yᵀx: a correlation loss whose gradient does not depend on the output.
    "linear": Loss("linear", lambda x, y: -np.sum(x * y, axis=-1),
                   lambda x, y: -np.broadcast_to(y, np.shape(x)).astype(float)),
}


def get_activation(activation_: str | NumericActivation | _Activation) -> NumericActivation:
    """NumPy ``σ`` and ``σ'`` of a registered activation (by name), of an
    :class:`~cognitive_action.declare.activations.Activation`, or pass a
    :class:`NumericActivation` through.

    Raises
    ------
    ActivationError
        For an unknown name.

    Examples
    --------
    >>> get_activation("relu")
    Traceback (most recent call last):
    ...
    cognitive_action.errors.ActivationError: unknown activation 'relu'. Fix: use one of \
identity, logistic, softplus, tanh, or pass Activation(name, function) for a C² function \
of your own (register_activation makes it known by name)
    """
    if isinstance(activation_, NumericActivation):
        return activation_
    return activation(activation_).numeric()


def get_loss(loss: str | Loss) -> Loss:
    """Look a loss up by name (``"squared"``, ``"linear"``), or pass a :class:`Loss`.

    Raises
    ------
    DeclarationError
        For an unknown name.
    """
    if isinstance(loss, Loss):
        return loss
    try:
        return LOSSES[loss]
    except KeyError:
        raise DeclarationError(
            f"unknown loss {loss!r}",
            fix=f"use one of {', '.join(sorted(LOSSES))}, or pass Loss(name, value, grad)",
        ) from None


def __getattr__(name: str) -> object:
    # Old names, kept working: the NumPy activation class and the name → activation table.
    if name == "Activation":
        import warnings
        warnings.warn("cognitive_action.diffusion.functions.Activation is now NumericActivation "
                      "(cognitive_action.declare.activations.Activation is the registry entry)",
                      DeprecationWarning, stacklevel=2)
        return NumericActivation
    if name == "ACTIVATIONS":
        from cognitive_action.declare.activations import ACTIVATIONS
        return {k: a.numeric() for k, a in ACTIVATIONS.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
