"""Learning from data: streams of samples as the signals of a network problem.

- :mod:`cognitive_action.data.streams`: :class:`Stream` (arrays of inputs and targets,
  validated before any work, presented piecewise-constant for a time ``tau`` each, in a
  sequential or seeded shuffled order) and :func:`digits_stream` (scikit-learn's
  ``load_digits``, an extra: ``pip install cognitive_action[data]``).
- :mod:`cognitive_action.data.run`: :func:`run_stream`, the full derived dynamics of a
  compiled system over a stream; the system is compiled once, the current sample is a
  runtime parameter, and at every switch of sample the state is made consistent with
  the constraints (:func:`consistent_state`).

Layer 3, beside :mod:`cognitive_action.compile`.
"""

from cognitive_action.data.run import StreamRun, SwitchReport, consistent_state, run_stream
from cognitive_action.data.streams import Stream, digits_stream

__all__ = ["Stream", "StreamRun", "SwitchReport", "consistent_state", "digits_stream",
           "run_stream"]
