"""Forward and backward waves on a layered network of time-delayed neurons (Section 2).

The model
---------
Layers ``l = 0..L``, weights ``W_l`` of shape ``(n_{l+1}, n_l)``, ticks ``t = 0..T-1``.

* Forward wave, eq. (1): ``x_{t,0} = u_t`` and ``x_{t+1,l+1} = σ(W_l x_{t,l})``. We write
  ``z_{t,l} = W_{l-1} x_{t,l-1}`` for the *drive* layer ``l`` computes at tick ``t``
  (so ``x_{t+1,l} = σ(z_{t,l})``) and ``a_{t,l} = z_{t-1,l}`` for the pre-activation of
  the value ``x_{t,l}`` it holds. The net starts at rest: ``a_{0,l} = 0``.
* Backward wave, the system after eq. (2): the output delta ``δ_{t,L}`` and
  ``δ_{t,l} = σ'_{t,l} ⊙ W_lᵀ δ_{t-1,l+1}`` for ``l < L``, one layer per tick, starting
  from ``δ_{-1,l} = 0``.
* Estimate, eq. (3): ``g_{t,l} = δ_{t,l} x_{t,l-1}ᵀ`` for ``W_{l-1}``.

Which σ' and which output (the ``derivative`` argument)
------------------------------------------------------
The system after eq. (2) writes ``σ'_{l}`` without saying at which tick it is taken. Two
local choices exist, both available:

``"incoming"`` (default)
    ``σ'_{t,l} = σ'(z_{t,l})``, the derivative at the drive layer ``l`` computes at tick
    ``t``, and the output delta is ``δ_{t,L} = σ'(z_{t,L}) ⊙ ∂V(σ(z_{t,L}), y)/∂x``.
    Then ``σ'(z_{t,l}) x_{t,l-1}ᵀ`` is exactly the Jacobian of this tick's update
    ``x_{t+1,l} = σ(W_{l-1} x_{t,l-1})`` with respect to ``W_{l-1}``: the local factor of
    (3) belongs to the same frame as the presynaptic signal. This is why it is the
    default: it is the only choice for which the top layer's estimate is exact for any
    input (with ``supervision="output"``), and the window of ticks over which the input
    must be constant is one tick shorter at every layer (``2(L-l)`` instead of
    ``2(L-l)+1``; see :func:`cognitive_action.diffusion.reference.exact_window`).
``"state"``
    ``σ'_{t,l} = σ'(a_{t,l})``, the derivative of the value ``x_{t,l}`` the layer holds
    when the delta passes, and ``δ_{t,L} = σ'(a_{t,L}) ⊙ ∂V(x_{t,L}, y)/∂x``: the most
    literal reading of the paper.

Both coincide for constant input once the pipeline has filled.

Which supervision (the ``supervision`` argument)
------------------------------------------------
``"paper"`` (default): ``y_s`` is used by the output delta formed at tick ``s``, the tick
``u_s`` enters the input; under it the forward wave at layer ``l_s = (L+1)/2`` and the
backward wave carry input and supervision of the same frame (the paper's "perfect
synchronization"). ``"output"``: the supervision of the frame the output value carries.
See :func:`cognitive_action.diffusion.reference.supervision_delay`.

Two engines, same numbers
-------------------------
:func:`simulate_waves` runs fixed weights: it sweeps layers, vectorized over all ticks
and runs at once (the wave recursion only couples ``(t-1, l±1)`` to ``(t, l)``, so each
layer's whole history is one matrix product). :func:`wave_step` advances one tick,
vectorized over layers (widths padded) and runs, for learning while the waves flow.

Examples
--------
>>> import numpy as np
>>> from cognitive_action.diffusion.reference import backprop_gradients
>>> rng = np.random.default_rng(0)
>>> W = [rng.normal(size=(3, 2)), rng.normal(size=(3, 3)), rng.normal(size=(1, 3))]
>>> u, y = np.ones((12, 1, 2)), np.full((12, 1, 1), 0.3)
>>> res = simulate_waves(W, u, y)
>>> fill_ticks(3)                          # all layers exact from tick 2L-2 = 4 on
4
>>> ref = backprop_gradients(W, u[0], y[0])
>>> all(np.allclose(res.estimate(l)[4:], ref[l - 1], atol=1e-12, rtol=0) for l in (1, 2, 3))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cognitive_action.diffusion.functions import Loss, NumericActivation, get_activation, get_loss
from cognitive_action.diffusion.reference import check_weights, supervision_delay
from cognitive_action.errors import DeclarationError, ShapeError

__all__ = [
    "WaveResult",
    "simulate_waves",
    "fill_ticks",
    "WaveState",
    "init_state",
    "wave_step",
    "pad_weights",
    "unpad_weights",
]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class WaveResult:
    """Histories of the forward and backward waves.

    Attributes
    ----------
    x
        ``x[l]``, ``l = 0..L``: forward values ``x_{t,l}``, shape ``(T, B, n_l)``
        (axes: tick, run, unit).
    drive
        ``drive[l]``, ``l = 1..L`` (``drive[0]`` is ``None``): ``z_{t,l} = W_{l-1}
        x_{t,l-1}``, shape ``(T, B, n_l)``.
    delta
        ``delta[l]``, ``l = 1..L`` (``delta[0]`` is ``None``): ``δ_{t,l}``, shape
        ``(T, B, n_l)``.
    weights, inputs, targets
        What was simulated (inputs ``(T, B, n_0)``, targets ``(T, B, n_L)``).
    activation, loss, derivative, delay
        The conventions used; ``delay`` is the supervision delay ``d``.
    """

    x: tuple[Array, ...]
    drive: tuple[Array | None, ...]
    delta: tuple[Array | None, ...]
    weights: tuple[Array, ...]
    inputs: Array
    targets: Array
    activation: NumericActivation
    loss: Loss
    derivative: str
    delay: int

    @property
    def depth(self) -> int:
        """``L``."""
        return len(self.weights)

    @property
    def ticks(self) -> int:
        """``T``."""
        return self.inputs.shape[0]

    def estimate(self, layer: int) -> Array:
        """``g_{t,l} = δ_{t,l} x_{t,l-1}ᵀ`` (eq. 3), shape ``(T, B, n_l, n_{l-1})``."""
        if not 1 <= layer <= self.depth:
            raise DeclarationError(f"layer must be in 1..{self.depth}, got {layer}")
        d = self.delta[layer]
        assert d is not None
        return d[..., :, None] * self.x[layer - 1][..., None, :]


def fill_ticks(depth: int, derivative: str = "incoming", delay: int = 0) -> int:
    """First tick from which every layer's estimate is exact under constant input.

    The delta reaching layer 1 at tick ``t`` left the output at ``t - (L - 1)``; the
    output is at its steady value from tick ``L - 1`` (drive, ``"incoming"``) or ``L``
    (held value, ``"state"``), and its supervision exists from tick ``d``. Hence
    ``t_fill = L - 1 + max(L - 1 + [state], d)``: ``2L - 2`` with the defaults.

    Examples
    --------
    >>> fill_ticks(9), fill_ticks(9, "state"), fill_ticks(9, "state", delay=9)
    (16, 17, 17)
    """
    c = 0 if derivative == "incoming" else 1
    return depth - 1 + max(depth - 1 + c, delay)


def _as_signal(a: ArrayLike, name: str) -> Array:
    arr = np.asarray(a, dtype=float)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise ShapeError(f"{name} must have shape (T, n) or (T, B, n), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DeclarationError(f"{name} contains NaN or infinite values")
    return arr


def _prepare(weights, inputs, targets, activation, loss, derivative, supervision):
    ws = check_weights(weights)
    u = _as_signal(inputs, "inputs")
    y = _as_signal(targets, "targets")
    if u.shape[-1] != ws[0].shape[1]:
        raise ShapeError(f"inputs have {u.shape[-1]} components, W_0 expects {ws[0].shape[1]}")
    if y.shape[-1] != ws[-1].shape[0]:
        raise ShapeError(f"targets have {y.shape[-1]} components, the output has "
                         f"{ws[-1].shape[0]}")
    if y.shape[:2] != u.shape[:2]:
        if y.shape[0] == u.shape[0] and y.shape[1] == 1:
            y = np.broadcast_to(y, (*u.shape[:2], y.shape[2]))
        else:
            raise ShapeError(f"targets have (T, B) = {y.shape[:2]}, inputs {u.shape[:2]}")
    delay = supervision_delay(supervision, len(ws), derivative)
    return ws, u, y, get_activation(activation), get_loss(loss), delay


def simulate_waves(weights: Sequence[ArrayLike], inputs: ArrayLike, targets: ArrayLike, *,
                   activation: str | NumericActivation = "tanh", loss: str | Loss = "squared",
                   derivative: str = "incoming", supervision: str | int = "paper",
                   ) -> WaveResult:
    """Run the time-delay model (1) and its backward wave with fixed weights.

    Parameters
    ----------
    weights
        ``W_0 ... W_{L-1}``, ``W_l`` of shape ``(n_{l+1}, n_l)``; shared by all runs.
    inputs
        ``u_t``, shape ``(T, B, n_0)`` or ``(T, n_0)`` (one run).
    targets
        ``y_t`` indexed by frame (``y_k`` supervises input ``u_k``), shape
        ``(T, B, n_L)`` or ``(T, n_L)``.
    activation
        ``"tanh"``, ``"logistic"``, ``"identity"``, ``"softplus"`` or an
        :class:`~cognitive_action.diffusion.functions.NumericActivation`.
    loss
        ``"squared"`` (``½‖x-y‖²``), ``"linear"`` (``-yᵀx``) or a
        :class:`~cognitive_action.diffusion.functions.Loss`.
    derivative
        ``"incoming"`` or ``"state"``: where σ' is taken (module docstring).
    supervision
        ``"paper"``, ``"output"`` or an int delay ``d`` (module docstring). Before tick
        ``d`` there is no supervision and the output delta is zero.

    Returns
    -------
    WaveResult
        Histories of ``x``, the drives and ``δ``; ``result.estimate(l)`` gives (3).
    """
    ws, u, y, act, lo, d = _prepare(weights, inputs, targets, activation, loss,
                                    derivative, supervision)
    L = len(ws)
    xs: list[Array] = [u]
    drives: list[Array | None] = [None]
    derivs: list[Array | None] = [None]
    for l in range(1, L + 1):
        z = xs[l - 1] @ ws[l - 1].T                      # z_{t,l}, all ticks at once
        a = np.zeros_like(z)                             # a_{t,l} = z_{t-1,l}, rest at t=0
        a[1:] = z[:-1]
        xs.append(act.f(a))
        drives.append(z)
        derivs.append(act.df(z) if derivative == "incoming" else act.df(a))
    out = act.f(drives[L]) if derivative == "incoming" else xs[L]
    err = np.zeros_like(out)
    if d < u.shape[0]:
        err[d:] = lo.grad(out[d:], y[: u.shape[0] - d])   # y_{s-d} at tick s
    deltas: list[Array | None] = [None] * (L + 1)
    deltas[L] = derivs[L] * err
    for l in range(L - 1, 0, -1):
        back = deltas[l + 1] @ ws[l]                     # W_lᵀ δ_{t,l+1}
        dl = np.zeros_like(back)
        dl[1:] = derivs[l][1:] * back[:-1]               # arrives one tick later
        deltas[l] = dl
    return WaveResult(x=tuple(xs), drive=tuple(drives), delta=tuple(deltas), weights=ws,
                      inputs=u, targets=np.ascontiguousarray(y), activation=act, loss=lo,
                      derivative=derivative, delay=d)


# ----------------------------------------------------------------------------------------
# Per-tick engine, vectorized over layers (padded widths) and runs.


def pad_weights(weights: Sequence[ArrayLike], batch: int = 1) -> tuple[Array, tuple[int, ...]]:
    """Stack ``W_0..W_{L-1}`` into one zero-padded array ``(B, L, n, n)``.

    Returns
    -------
    stacked, widths
        The stacked weights (copied per run) and the widths ``(n_0, ..., n_L)``.
    """
    ws = check_weights(weights)
    widths = (ws[0].shape[1], *(w.shape[0] for w in ws))
    n = max(widths)
    out = np.zeros((batch, len(ws), n, n))
    for l, w in enumerate(ws):
        out[:, l, : w.shape[0], : w.shape[1]] = w
    return out, widths


def unpad_weights(stacked: Array, widths: Sequence[int], run: int = 0) -> list[Array]:
    """Inverse of :func:`pad_weights` for one run."""
    return [stacked[run, l, : widths[l + 1], : widths[l]].copy()
            for l in range(len(widths) - 1)]


@dataclass
class WaveState:
    """State of the per-tick engine, all arrays padded to the widest layer ``n``.

    Attributes
    ----------
    x
        ``x_{t,l}``, shape ``(B, L+1, n)``; padded units are 0.
    pre
        ``a_{t,l}`` (held pre-activations), shape ``(B, L+1, n)``, index 0 unused.
    delta
        ``δ_{t-1,l}`` from the previous tick, shape ``(B, L+1, n)``, index 0 unused.
    mask
        ``(L+1, n)``, 1 on real units.
    tick
        ``t``.
    """

    x: Array
    pre: Array
    delta: Array
    mask: Array
    tick: int = 0


def init_state(widths: Sequence[int], batch: int = 1, *,
               activation: str | NumericActivation = "tanh") -> WaveState:
    """The network at rest (``a_{0,l} = 0``, no delta in flight)."""
    act = get_activation(activation)
    L, n = len(widths) - 1, max(widths)
    mask = np.zeros((L + 1, n))
    for l, w in enumerate(widths):
        mask[l, :w] = 1.0
    pre = np.zeros((batch, L + 1, n))
    x = act.f(pre) * mask
    return WaveState(x=x, pre=pre, delta=np.zeros((batch, L + 1, n)), mask=mask)


def wave_step(state: WaveState, stacked: Array, u_t: ArrayLike, y_sup: ArrayLike | None, *,
              activation: str | NumericActivation = "tanh", loss: str | Loss = "squared",
              derivative: str = "incoming") -> tuple[WaveState, Array]:
    """Advance every layer and every run by one tick.

    Parameters
    ----------
    state
        State at tick ``t`` (before the input of tick ``t`` is applied).
    stacked
        Padded weights ``(B, L, n, n)`` from :func:`pad_weights` (may change between
        ticks: learning while the waves flow).
    u_t
        Input of tick ``t``, shape ``(B, n_0)``.
    y_sup
        Supervision used by the output delta formed at tick ``t`` (``y_{t-d}``), shape
        ``(B, n_L)``, or ``None`` for none yet.
    activation, loss, derivative
        As in :func:`simulate_waves`.

    Returns
    -------
    new_state, g
        The state at tick ``t + 1`` and the estimates ``g_{t,l}`` of eq. (3), padded,
        shape ``(B, L, n, n)`` (index ``l - 1`` for layer ``l``).
    """
    act, lo = get_activation(activation), get_loss(loss)
    B, L, n, _ = stacked.shape
    m = state.mask
    x = state.x.copy()
    u_t = np.asarray(u_t, dtype=float)
    x[:, 0, : u_t.shape[-1]] = u_t
    z = np.einsum("blij,blj->bli", stacked, x[:, :-1])          # z_{t,l}, l = 1..L
    s = act.df(z) if derivative == "incoming" else act.df(state.pre[:, 1:])
    s = s * m[1:]
    delta = np.zeros_like(state.delta)
    if y_sup is not None:
        y_sup = np.asarray(y_sup, dtype=float)
        nL = y_sup.shape[-1]
        out = act.f(z[:, -1, :nL]) if derivative == "incoming" else x[:, L, :nL]
        delta[:, L, :nL] = s[:, -1, :nL] * lo.grad(out, y_sup)
    if L > 1:
        back = np.einsum("blij,bli->blj", stacked[:, 1:], state.delta[:, 2:])
        delta[:, 1:L] = s[:, :-1] * back
    g = delta[:, 1:, :, None] * x[:, :-1, None, :]
    new = WaveState(x=np.concatenate([x[:, :1], act.f(z) * m[1:]], axis=1),
                    pre=np.concatenate([state.pre[:, :1], z], axis=1),
                    delta=delta, mask=m, tick=state.tick + 1)
    return new, g
