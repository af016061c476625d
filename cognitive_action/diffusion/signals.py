"""Input and supervision signals ``u_t``, ``y_t`` for the time-delay model (1).

Every signal is an array of shape ``(T, B, n)``: tick, run (batch), component. Tick
``t`` of the input is fed to layer 0 at tick ``t`` (``x_{t,0} = u_t``); we call it
*frame* ``t``. Functions take a batch of speeds at once, so a sweep over speeds is one
array.

Examples
--------
>>> u = sinusoid(8, 2, frequency=[0.0, 0.25], phase=0.0)
>>> u.shape
(8, 2, 2)
>>> u[:4, 1, 0].round(12).tolist()   # a quarter cycle per tick
[0.0, 1.0, 0.0, -1.0]
>>> f = frames(6, 1, hold=3, rng=0)[:, 0, 0]
>>> bool(f[0] == f[1] == f[2] != f[3] == f[4] == f[5])
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cognitive_action.errors import DeclarationError, ShapeError

__all__ = ["constant", "sinusoid", "frames", "smooth_random", "recorded"]

Array = NDArray[np.float64]
Seed = int | np.random.Generator | None


def _ticks(T: int) -> int:
    if int(T) != T or T < 1:
        raise DeclarationError(f"the number of ticks must be a positive integer, got {T!r}",
                               fix="pass T >= 1")
    return int(T)


def constant(T: int, value: ArrayLike) -> Array:
    """A signal held at ``value`` for ``T`` ticks.

    Parameters
    ----------
    T
        Number of ticks.
    value
        Shape ``(n,)`` (one run) or ``(B, n)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(T, B, n)``.

    Examples
    --------
    >>> constant(3, [1.0, 2.0]).shape
    (3, 1, 2)
    """
    v = np.asarray(value, dtype=float)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2:
        raise ShapeError(f"value must have shape (n,) or (B, n), got {v.shape}")
    return np.broadcast_to(v, (_ticks(T), *v.shape)).copy()


def sinusoid(T: int, n: int, frequency: float | Sequence[float], *,
             amplitude: float = 1.0, phase: ArrayLike | None = None,
             rng: Seed = None) -> Array:
    """Sinusoids ``u_t[b, i] = A sin(2π f_b t + φ_i)``, one run per frequency.

    Parameters
    ----------
    T, n
        Ticks and components.
    frequency
        Frequency in cycles per tick, a scalar or one per run ``b`` (the batch).
    amplitude
        ``A``.
    phase
        Phase ``φ_i`` per component (shape ``(n,)``, or a scalar); random in
        ``[0, 2π)`` from ``rng`` when omitted, the same for every run.
    rng
        Seed or generator for the random phases.

    Returns
    -------
    numpy.ndarray
        Shape ``(T, B, n)`` with ``B = len(frequency)``.
    """
    f = np.atleast_1d(np.asarray(frequency, dtype=float))
    if f.ndim != 1:
        raise ShapeError("frequency must be a scalar or a 1-d sequence")
    if phase is None:
        phi = np.random.default_rng(rng).uniform(0.0, 2.0 * np.pi, size=n)
    else:
        phi = np.broadcast_to(np.asarray(phase, dtype=float), (n,))
    t = np.arange(_ticks(T), dtype=float)
    return amplitude * np.sin(2.0 * np.pi * f[None, :, None] * t[:, None, None]
                              + phi[None, None, :])


def frames(T: int, n: int, hold: int | Sequence[int], *, rng: Seed = None,
           scale: float = 1.0) -> Array:
    """Piecewise-constant random frames, each held for ``hold`` ticks.

    Frame values are i.i.d. normal with standard deviation ``scale``; the first frame
    starts at tick 0, so frame boundaries are at multiples of ``hold``.

    Parameters
    ----------
    T, n
        Ticks and components.
    hold
        Ticks each frame is held, a scalar or one per run.
    rng
        Seed or generator. All runs draw from the same sequence of frame values, so
        runs differ only in how long each value is held.
    scale
        Standard deviation of the frame values.

    Returns
    -------
    numpy.ndarray
        Shape ``(T, B, n)``.
    """
    k = np.atleast_1d(np.asarray(hold))
    if k.ndim != 1 or np.any(k < 1) or np.any(k != np.round(k)):
        raise DeclarationError(f"hold must be positive integers, got {hold!r}",
                               fix="pass hold >= 1 ticks per frame")
    T = _ticks(T)
    values = scale * np.random.default_rng(rng).normal(size=(T, n))
    t = np.arange(T)
    idx = t[:, None] // k.astype(int)[None, :]          # (T, B): frame index per tick
    return values[idx]


def smooth_random(T: int, n: int, correlation_ticks: float | Sequence[float], *,
                  rng: Seed = None, batch: int | None = None) -> Array:
    """A smooth stationary random signal: Gaussian noise low-passed by a Gaussian kernel.

    The autocorrelation is ``exp(-τ²/(4ℓ²))`` for lag ``τ`` with ``ℓ =
    correlation_ticks``; each component has unit variance. Used as the slowly varying
    stream of the online-learning experiment: it explores every input direction while
    changing little from one tick to the next.

    Parameters
    ----------
    T, n
        Ticks and components.
    correlation_ticks
        ``ℓ``, a scalar or one per run.
    rng
        Seed or generator.
    batch
        Number of independent runs when ``correlation_ticks`` is a scalar.

    Returns
    -------
    numpy.ndarray
        Shape ``(T, B, n)``.

    Examples
    --------
    >>> s = smooth_random(20000, 2, 50.0, rng=1)
    >>> bool(abs(s.std() - 1.0) < 0.1), bool(np.mean(np.abs(np.diff(s, axis=0))) < 0.05)
    (True, True)
    """
    ell = np.atleast_1d(np.asarray(correlation_ticks, dtype=float))
    if batch is not None:
        if ell.size != 1:
            raise ShapeError("give either one correlation length per run or batch=...")
        ell = np.full(batch, ell[0])
    if np.any(ell <= 0):
        raise DeclarationError("correlation_ticks must be positive")
    T = _ticks(T)
    gen = np.random.default_rng(rng)
    pad = int(8 * ell.max()) + 1
    m = T + 2 * pad
    noise = gen.normal(size=(m, ell.size, n))
    freq = np.fft.rfftfreq(m)
    spec = np.exp(-0.5 * (2 * np.pi * freq[:, None] * ell[None, :]) ** 2)  # Gaussian kernel
    out = np.fft.irfft(np.fft.rfft(noise, axis=0) * spec[:, :, None], n=m, axis=0)
    out = out[pad:pad + T]
    return out / out.std(axis=(0, 2), keepdims=True)


def recorded(values: ArrayLike) -> Array:
    """A recorded sequence as a signal: ``(T, n)`` or ``(T, B, n)`` → ``(T, B, n)``.

    Examples
    --------
    >>> recorded([[0.0], [1.0]]).shape
    (2, 1, 1)
    """
    v = np.asarray(values, dtype=float)
    if v.ndim == 2:
        v = v[:, None, :]
    if v.ndim != 3:
        raise ShapeError(f"a recorded signal has shape (T, n) or (T, B, n), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise DeclarationError("the recorded signal contains NaN or infinite values")
    return v
