"""scikit-learn's ``load_digits`` (8×8 images, 10 classes) split for training."""

from __future__ import annotations

from cognitive_action.data.streams import load_digits_split

__all__ = ["load_digits_split", "SOURCES"]

#: Data sources a problem file may name (``[data] source = "digits"``).
SOURCES = ("digits",)
