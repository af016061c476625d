"""Learning from data (layer 5): the compiled limit law, training, checkpoints, digits.

See :mod:`cognitive_action.learn.kernel` and :mod:`cognitive_action.learn.train`.
"""

from cognitive_action.learn.digits import load_digits_split
from cognitive_action.learn.kernel import LimitKernel, compile_limit_law
from cognitive_action.learn.train import (
    CheckpointError,
    Dataset,
    ModeNotAvailableError,
    TrainingHistory,
    as_dataset,
    initial_weights,
    plot_learning_curves,
    register_runner,
    sgd_baseline,
    train,
)

__all__ = ["LimitKernel", "compile_limit_law", "train", "sgd_baseline", "TrainingHistory",
           "Dataset", "as_dataset", "CheckpointError", "ModeNotAvailableError",
           "register_runner", "initial_weights", "plot_learning_curves", "load_digits_split"]
