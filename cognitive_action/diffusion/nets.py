"""Random layered networks and teacher signals for the Section 2 experiments.

Examples
--------
>>> W = random_weights([3, 4, 2], rng=0)
>>> [w.shape for w in W]
[(4, 3), (2, 4)]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cognitive_action.diffusion.functions import NumericActivation
from cognitive_action.diffusion.reference import static_forward
from cognitive_action.errors import ShapeError

__all__ = ["random_weights", "teacher_targets"]

Array = NDArray[np.float64]


def random_weights(widths: Sequence[int], *, gain: float = 1.3,
                   rng: int | np.random.Generator | None = None) -> list[Array]:
    """Gaussian weights ``W_l ~ N(0, gain²/n_l)``, ``W_l`` of shape ``(n_{l+1}, n_l)``.

    Parameters
    ----------
    widths
        ``(n_0, ..., n_L)``, at least two entries.
    gain
        Scale; about 1.3 keeps tanh activity from vanishing through ten layers.
    rng
        Seed or generator.
    """
    if len(widths) < 2 or any(int(n) < 1 for n in widths):
        raise ShapeError(f"widths must list at least two positive sizes, got {widths!r}")
    gen = np.random.default_rng(rng)
    return [gain * gen.normal(size=(int(widths[i + 1]), int(widths[i]))) / np.sqrt(widths[i])
            for i in range(len(widths) - 1)]


def teacher_targets(teacher: Sequence[ArrayLike], inputs: ArrayLike, *,
                    activation: str | NumericActivation = "tanh") -> Array:
    """Supervision ``y_k = f_teacher(u_k)``, the teacher's static output for every frame."""
    return static_forward(teacher, inputs, activation=activation)[0][-1]
