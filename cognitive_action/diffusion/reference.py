"""The reference: exact per-frame gradients by static backprop, and the frame alignment.

Static network (no delays), frame ``k`` with input ``u_k`` and supervision ``y_k``::

    x_0 = u_k,   a_l = W_{l-1} x_{l-1},   x_l = σ(a_l),   l = 1..L
    V_k = V(x_L, y_k)
    δ_L = σ'(a_L) ⊙ ∂V/∂x_L,   δ_l = σ'(a_l) ⊙ W_lᵀ δ_{l+1}
    ∂V_k/∂W_{l-1} = δ_l x_{l-1}ᵀ

This module computes it independently of :mod:`cognitive_action.diffusion.waves` (a
plain layer loop over frames, no delays; tested against CasADi's autodiff and finite
differences) and states which frame each wave estimate is compared with.

Frame alignment
---------------
Frame ``k`` is the input fed at tick ``k`` (``x_{k,0} = u_k``). By (1)-(2) the forward
value ``x_{t,l}`` carries frame ``t - l``. The estimate (3) at layer ``l`` and tick
``t``, ``g_{t,l} = δ_{t,l} x_{t,l-1}ᵀ``, multiplies the presynaptic activity
``x_{t,l-1}``, which carries frame ``k = t - l + 1``; **that is the frame it is compared
with**: ``g_{t,l}`` against ``∂V_k/∂W_{l-1}`` with ``k = t - l + 1`` and supervision
``y_k`` (:func:`reference_frame`). The backward factor ``δ_{t,l}`` carries other frames;
:func:`signal_frames` lists them, and :func:`exact_window` gives the ticks over which the
input must be constant for the estimate to be exact.

Examples
--------
>>> import numpy as np
>>> W = [np.array([[2.0]])]                       # L = 1, x_1 = tanh(2 u)
>>> g = backprop_gradients(W, np.array([[0.5]]), np.array([[0.0]]), activation="tanh")
>>> x1 = np.tanh(1.0)
>>> bool(np.isclose(g[0][0, 0, 0], (1 - x1**2) * x1 * 0.5))
True
>>> reference_frame(t=10, layer=3)
8
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cognitive_action.diffusion.functions import Loss, NumericActivation, get_activation, get_loss
from cognitive_action.errors import DeclarationError, ShapeError

__all__ = [
    "check_weights",
    "static_forward",
    "backprop_factors",
    "backprop_gradients",
    "frame_loss",
    "reference_frame",
    "supervision_delay",
    "signal_frames",
    "exact_window",
    "BackpropFactors",
]

Array = NDArray[np.float64]


def check_weights(weights: Sequence[ArrayLike]) -> tuple[Array, ...]:
    """Validate ``W_0, ..., W_{L-1}`` (``W_l`` of shape ``(n_{l+1}, n_l)``).

    Returns
    -------
    tuple of numpy.ndarray
        The weights as float arrays.

    Raises
    ------
    ShapeError
        If there are no layers or consecutive widths do not chain.
    """
    ws = tuple(np.asarray(w, dtype=float) for w in weights)
    if len(ws) == 0:
        raise ShapeError("a network needs at least one weight matrix (L >= 1)")
    for i, w in enumerate(ws):
        if w.ndim != 2:
            raise ShapeError(f"W_{i} must be a matrix, got shape {w.shape}")
        if i > 0 and w.shape[1] != ws[i - 1].shape[0]:
            raise ShapeError(
                f"W_{i} has {w.shape[1]} columns but W_{i - 1} has {ws[i - 1].shape[0]} rows",
                fix="W_l must have shape (n_{l+1}, n_l)",
            )
        if not np.all(np.isfinite(w)):
            raise DeclarationError(f"W_{i} contains NaN or infinite entries")
    return ws


def static_forward(weights: Sequence[ArrayLike], inputs: ArrayLike, *,
                   activation: str | NumericActivation = "tanh") -> tuple[list[Array], list[Array]]:
    """Instantaneous forward pass of every frame.

    Parameters
    ----------
    weights
        ``W_0 ... W_{L-1}``.
    inputs
        Frames ``u``, shape ``(..., n_0)``.
    activation
        σ.

    Returns
    -------
    xs, pre
        ``xs[l]`` is ``x_l`` (``l = 0..L``); ``pre[l]`` is ``a_l`` (``pre[0]`` is the
        input itself, unused).
    """
    ws = check_weights(weights)
    act = get_activation(activation)
    x = np.asarray(inputs, dtype=float)
    if x.shape[-1] != ws[0].shape[1]:
        raise ShapeError(f"inputs have {x.shape[-1]} components, W_0 expects {ws[0].shape[1]}")
    xs, pre = [x], [x]
    for w in ws:
        a = x @ w.T
        x = act.f(a)
        pre.append(a)
        xs.append(x)
    return xs, pre


@dataclass(frozen=True)
class BackpropFactors:
    """Factors of the exact per-frame gradient ``∂V/∂W_{l-1} = delta[l] ⊗ x[l-1]``.

    Attributes
    ----------
    x
        ``x[l]``, ``l = 0..L``, shape ``(..., n_l)``.
    delta
        ``delta[l]``, ``l = 1..L`` (``delta[0]`` is ``None``), shape ``(..., n_l)``.
    """

    x: tuple[Array, ...]
    delta: tuple[Array | None, ...]

    def gradient(self, layer: int) -> Array:
        """``∂V/∂W_{layer-1}``, shape ``(..., n_layer, n_{layer-1})``."""
        if not 1 <= layer < len(self.x):
            raise DeclarationError(f"layer must be in 1..{len(self.x) - 1}, got {layer}")
        d = self.delta[layer]
        assert d is not None
        return d[..., :, None] * self.x[layer - 1][..., None, :]


def backprop_factors(weights: Sequence[ArrayLike], inputs: ArrayLike, targets: ArrayLike, *,
                     activation: str | NumericActivation = "tanh",
                     loss: str | Loss = "squared") -> BackpropFactors:
    """Exact per-frame backprop, returning ``x_l`` and ``δ_l`` for every frame.

    Parameters
    ----------
    weights
        ``W_0 ... W_{L-1}``.
    inputs, targets
        Frames ``u`` of shape ``(..., n_0)`` and ``y`` of shape ``(..., n_L)``, same
        leading axes.
    activation, loss
        σ and V.

    Returns
    -------
    BackpropFactors
    """
    ws = check_weights(weights)
    act, lo = get_activation(activation), get_loss(loss)
    xs, pre = static_forward(ws, inputs, activation=act)
    y = np.asarray(targets, dtype=float)
    if y.shape != xs[-1].shape:
        raise ShapeError(f"targets have shape {y.shape}, outputs have shape {xs[-1].shape}")
    L = len(ws)
    delta: list[Array | None] = [None] * (L + 1)
    delta[L] = act.df(pre[L]) * lo.grad(xs[L], y)
    for l in range(L - 1, 0, -1):
        delta[l] = act.df(pre[l]) * (delta[l + 1] @ ws[l])
    return BackpropFactors(x=tuple(xs), delta=tuple(delta))


def backprop_gradients(weights: Sequence[ArrayLike], inputs: ArrayLike, targets: ArrayLike, *,
                       activation: str | NumericActivation = "tanh",
                       loss: str | Loss = "squared") -> tuple[Array, ...]:
    """Exact per-frame gradients ``∂V_k/∂W_{l-1}``.

    Returns
    -------
    tuple of numpy.ndarray
        Element ``l - 1`` is the gradient for ``W_{l-1}`` (the paper's layer ``l``),
        shape ``(..., n_l, n_{l-1})``.
    """
    fac = backprop_factors(weights, inputs, targets, activation=activation, loss=loss)
    return tuple(fac.gradient(l) for l in range(1, len(fac.x)))


def frame_loss(weights: Sequence[ArrayLike], inputs: ArrayLike, targets: ArrayLike, *,
               activation: str | NumericActivation = "tanh", loss: str | Loss = "squared") -> Array:
    """Per-frame loss ``V(x_L(u_k), y_k)``, shape ``(...)``."""
    xs, _ = static_forward(weights, inputs, activation=activation)
    return get_loss(loss).value(xs[-1], np.asarray(targets, dtype=float))


def reference_frame(t: int | Array, layer: int) -> int | Array:
    """Frame whose gradient ``g_{t,l}`` is compared with: ``k = t - l + 1``.

    It is the frame carried by the presynaptic forward signal ``x_{t,l-1}``.
    """
    return t - layer + 1


def supervision_delay(supervision: str | int, depth: int, derivative: str) -> int:
    """Ticks ``d`` between a supervision ``y_k`` and the tick its output delta is formed.

    The output delta formed at tick ``s`` uses ``y_{s-d}``.

    Parameters
    ----------
    supervision
        ``"paper"``: ``d = 0``, ``y_s`` enters at tick ``s`` together with ``u_s``, the
        alignment under which the paper's ``l_s = (L+1)/2`` pairs input and supervision
        of the same frame. ``"output"``: the supervision of the frame the output signal
        carries (``d = L - 1`` for ``derivative="incoming"``, ``d = L`` for
        ``"state"``). An int gives ``d`` directly.
    depth
        ``L``.
    derivative
        ``"incoming"`` or ``"state"`` (see :func:`cognitive_action.diffusion.waves.simulate_waves`).

    Examples
    --------
    >>> supervision_delay("paper", 9, "incoming"), supervision_delay("output", 9, "incoming")
    (0, 8)
    """
    _check_derivative(derivative)
    if isinstance(supervision, str):
        if supervision == "paper":
            return 0
        if supervision == "output":
            return depth - 1 if derivative == "incoming" else depth
        raise DeclarationError(f"unknown supervision alignment {supervision!r}",
                               fix="use 'paper', 'output' or a non-negative int delay")
    d = int(supervision)
    if d != supervision or d < 0:
        raise DeclarationError(f"a supervision delay must be a non-negative int, got {supervision}")
    return d


def _check_derivative(derivative: str) -> None:
    if derivative not in ("incoming", "state"):
        raise DeclarationError(f"unknown derivative convention {derivative!r}",
                               fix="use 'incoming' or 'state'")


def signal_frames(layer: int, depth: int, *, derivative: str = "incoming",
                  delay: int = 0) -> dict[str, list[int]]:
    """Frames (as offsets from the tick ``t``) that enter ``g_{t,l}``.

    Parameters
    ----------
    layer, depth
        ``l`` and ``L``.
    derivative
        Convention for σ' in the backward wave.
    delay
        Supervision delay ``d`` (:func:`supervision_delay`).

    Returns
    -------
    dict
        ``forward``: ``[-l + 1]`` (the frame of ``x_{t,l-1}``); ``derivative``: the frames
        of the ``σ'`` factors met at layers ``l..L``; ``output``: frame of the output value
        in the output delta; ``supervision``: frame of the ``y`` in it.

    Examples
    --------
    >>> signal_frames(1, 3)        # L = 3, bottom layer, paper supervision
    {'forward': [0], 'derivative': [0, -2, -4], 'output': [-4], 'supervision': [-2]}
    """
    _check_derivative(derivative)
    if not 1 <= layer <= depth:
        raise DeclarationError(f"layer must be in 1..{depth}, got {layer}")
    c = 1 if derivative == "incoming" else 0
    # the delta at (t, l) left the output at tick s = t - (L - l); it met layer j at
    # tick t - (j - l), where the drive carries frame t-(j-l)-j+1 and the state t-(j-l)-j.
    return {
        "forward": [1 - layer],
        "derivative": [layer - 2 * j + c for j in range(layer, depth + 1)],
        "output": [layer - 2 * depth + c],
        "supervision": [layer - depth - delay],
    }


def exact_window(layer: int, depth: int, *, derivative: str = "incoming",
                 delay: int = 0) -> tuple[int, int]:
    """Offsets ``(lo, hi)`` such that ``g_{t,l}`` is exact iff ``u`` and ``y`` are constant
    on ticks ``t+lo .. t+hi``.

    Exact means equal to the reference of frame ``t - l + 1`` (:func:`reference_frame`),
    for generic weights and signals. The window has ``hi - lo + 1`` ticks; with the
    default conventions it is ``2(L - l) + 1`` for ``l <= l_s`` under the paper's
    supervision.

    Examples
    --------
    >>> exact_window(1, 9), exact_window(9, 9)
    ((-16, 0), (-8, 0))
    >>> exact_window(9, 9, delay=8)     # supervision of the frame the output carries
    (-8, -8)
    """
    frames = [f for v in signal_frames(layer, depth, derivative=derivative,
                                       delay=delay).values() for f in v]
    return min(frames), max(frames)
