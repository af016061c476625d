"""Online learning while the waves flow, against exact per-frame backprop.

A teacher network labels a slowly varying input stream (``y_t = f_teacher(u_t)``); a
student of the same architecture learns from it online, one update per tick:

``method="diffusion"``
    The student runs the time-delay model (1) and its backward wave
    (:func:`~cognitive_action.diffusion.waves.wave_step`); every tick each synapse moves
    along its local estimate (3), ``W_{l-1} ← W_{l-1} - η g_{t,l}``, while the signals
    keep flowing through the changing weights. Updates start once the pipeline has filled
    (:func:`~cognitive_action.diffusion.waves.fill_ticks`).
``method="backprop"``
    Every tick the student takes the exact gradient of the current frame's loss,
    ``W_{l-1} ← W_{l-1} - η ∂V(f_W(u_t), y_t)/∂W_{l-1}``: instantaneous forward and
    backward passes, the baseline.

Both see the same stream and start from the same weights; the learning curve is the
student's mean static loss on a held-out set of frames from the same kind of stream.

Examples
--------
>>> import numpy as np
>>> from cognitive_action.diffusion import signals
>>> from cognitive_action.diffusion.nets import random_weights
>>> teacher, student = random_weights([2, 3, 1], rng=0), random_weights([2, 3, 1], rng=1)
>>> u = signals.smooth_random(3000, 2, 30.0, rng=2, batch=2)
>>> test = signals.smooth_random(500, 2, 30.0, rng=3)[:, 0]
>>> c = online_learning(teacher, student, u, test_inputs=test, lr=0.05, eval_every=1000)
>>> c.test_loss.shape                 # (evaluation, run)
(4, 2)
>>> bool(np.all(c.test_loss[-1] < 0.5 * c.test_loss[0]))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cognitive_action.diffusion.functions import get_activation, get_loss
from cognitive_action.diffusion.nets import teacher_targets
from cognitive_action.diffusion.reference import frame_loss, supervision_delay
from cognitive_action.diffusion.waves import (
    fill_ticks,
    init_state,
    pad_weights,
    unpad_weights,
    wave_step,
)
from cognitive_action.errors import DeclarationError, SimulationError

__all__ = ["LearningCurve", "online_learning"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class LearningCurve:
    """Test loss of an online learner over time.

    Attributes
    ----------
    method
        ``"diffusion"`` or ``"backprop"``.
    ticks
        Ticks at which the test loss was evaluated, shape ``(E,)``.
    test_loss
        Mean per-frame loss on the test frames, shape ``(E, B)`` (evaluation, run).
    final_weights
        The student's weights at the end, one list per run.
    supervision, derivative
        Conventions of the diffusion learner (``None`` for backprop).
    """

    method: str
    ticks: Array
    test_loss: Array
    final_weights: list[list[Array]]
    supervision: str | int | None
    derivative: str | None


def _static_backprop_padded(P: Array, mask: Array, u: Array, y: Array, act, lo) -> Array:
    """Exact per-frame gradients for padded per-run weights ``P`` (B, L, n, n)."""
    B, L, n, _ = P.shape
    x = np.zeros((B, L + 1, n))
    a = np.zeros((B, L + 1, n))
    x[:, 0, : u.shape[-1]] = u
    for l in range(1, L + 1):
        a[:, l] = np.einsum("bij,bj->bi", P[:, l - 1], x[:, l - 1])
        x[:, l] = act.f(a[:, l]) * mask[l]
    nL = y.shape[-1]
    delta = np.zeros((B, L + 1, n))
    delta[:, L, :nL] = act.df(a[:, L, :nL]) * lo.grad(x[:, L, :nL], y)
    for l in range(L - 1, 0, -1):
        delta[:, l] = act.df(a[:, l]) * np.einsum("bij,bi->bj", P[:, l], delta[:, l + 1])
        delta[:, l] *= mask[l]
    return delta[:, 1:, :, None] * x[:, :-1, None, :]


def online_learning(teacher: Sequence[ArrayLike], student: Sequence[ArrayLike],
                    inputs: ArrayLike, *, test_inputs: ArrayLike, lr: float = 0.02,
                    method: str = "diffusion", activation: str = "tanh",
                    loss: str = "squared", derivative: str = "incoming",
                    supervision: str | int = "paper", eval_every: int = 500) -> LearningCurve:
    """Train a student online on a teacher-labelled stream.

    Parameters
    ----------
    teacher, student
        Weights ``W_0..W_{L-1}`` of the teacher and of the student's initial state (same
        widths). Every run starts from the same student.
    inputs
        Stream ``u_t``, shape ``(T, B, n_0)``: one independent stream per run.
    test_inputs
        Held-out frames, shape ``(N, n_0)``, labelled by the teacher.
    lr
        Learning rate ``η``.
    method
        ``"diffusion"`` or ``"backprop"`` (module docstring).
    activation, loss, derivative, supervision
        As in :func:`~cognitive_action.diffusion.waves.simulate_waves`.
    eval_every
        Ticks between evaluations of the test loss (also evaluated at tick 0 and at the
        end).

    Returns
    -------
    LearningCurve

    Raises
    ------
    SimulationError
        If the weights become NaN or infinite (learning rate too large).
    """
    if method not in ("diffusion", "backprop"):
        raise DeclarationError(f"unknown method {method!r}", fix="use 'diffusion' or 'backprop'")
    u = np.asarray(inputs, dtype=float)
    if u.ndim == 2:
        u = u[:, None, :]
    T, B, _ = u.shape
    act, lo = get_activation(activation), get_loss(loss)
    y = teacher_targets(teacher, u, activation=act)
    test_u = np.asarray(test_inputs, dtype=float)
    test_y = teacher_targets(teacher, test_u, activation=act)
    P, widths = pad_weights(student, batch=B)
    L = len(widths) - 1
    state = init_state(widths, B, activation=act)
    d = supervision_delay(supervision, L, derivative)
    start = fill_ticks(L, derivative, d)

    ticks, losses = [], []

    def evaluate(t: int) -> None:
        if not np.all(np.isfinite(P)):
            raise SimulationError("the student's weights are not finite",
                                  fix="lower the learning rate", time=float(t))
        ticks.append(t)
        losses.append([float(np.mean(frame_loss(unpad_weights(P, widths, b), test_u, test_y,
                                                 activation=act, loss=lo)))
                       for b in range(B)])

    evaluate(0)
    # a blow-up is reported as a SimulationError at the next evaluation, not as warnings
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            if method == "diffusion":
                state, g = wave_step(state, P, u[t], y[t - d] if t >= d else None,
                                     activation=act, loss=lo, derivative=derivative)
                if t >= start:
                    P -= lr * g
            else:
                P -= lr * _static_backprop_padded(P, state.mask, u[t], y[t], act, lo)
            if (t + 1) % eval_every == 0 or t == T - 1:
                evaluate(t + 1)
    return LearningCurve(method=method, ticks=np.array(ticks), test_loss=np.array(losses),
                         final_weights=[unpad_weights(P, widths, b) for b in range(B)],
                         supervision=supervision if method == "diffusion" else None,
                         derivative=derivative if method == "diffusion" else None)
