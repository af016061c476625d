"""scikit-learn's ``load_digits`` (8×8 images, 10 classes) split for training."""

from __future__ import annotations

import numpy as np

from cognitive_action.errors import OptionalDependencyError, ShapeError

__all__ = ["load_digits_split", "SOURCES"]

#: Data sources a problem file may name (``[data] source = "digits"``).
SOURCES = ("digits",)


def load_digits_split(split: float = 0.2, seed: int = 0, limit: int | None = None
                      ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((X_train, labels_train), (X_test, labels_test))`` with pixels scaled to [0, 1].

    Parameters
    ----------
    split
        Fraction of samples held out for testing (a random permutation by ``seed``).
    seed
        Seed of the split.
    limit
        Keep only the first ``limit`` samples of the permutation (quick runs).

    Raises
    ------
    OptionalDependencyError
        When scikit-learn is not installed.
    """
    if not 0 < split < 1:
        raise ShapeError(f"split = {split!r} must be between 0 and 1", fix="e.g. 0.2")
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise OptionalDependencyError(
            "the digits data come from scikit-learn, which is not installed",
            fix="pip install 'cognitive-action[data]' (or pip install scikit-learn)") from exc
    d = load_digits()
    X = d.data.astype(float) / 16.0
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(X))
    if limit is not None:
        perm = perm[:limit]
    n_test = max(1, int(round(split * len(perm))))
    te, tr = perm[:n_test], perm[n_test:]
    return (X[tr], y[tr]), (X[te], y[te])
