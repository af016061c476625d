"""verify stage of cognitive_action: limits, the verifier, pytest helpers, metrics.

>>> from cognitive_action.verify import verify, backprop, reduce, Report
"""

from cognitive_action.derive.limits import (
    Limit,
    ReducedSystem,
    backprop,
    gradient_flow,
    quasi_static,
    reduce,
    staged,
)
from cognitive_action.verify.checks import verify
from cognitive_action.verify.convergence import (
    check_convergence_delta,
    check_convergence_velocity,
    check_drift_rate,
    check_learning_drift,
    simulate_learning,
)
from cognitive_action.verify.pytest_helpers import (
    VerificationError,
    assert_backprop_limit,
    assert_full_rank,
    assert_simulated_limits,
)
from cognitive_action.verify.report import Check, Report

__all__ = ["Check", "Limit", "ReducedSystem", "Report", "VerificationError",
           "assert_backprop_limit", "assert_full_rank", "assert_simulated_limits", "backprop",
           "check_convergence_delta", "check_convergence_velocity", "check_drift_rate",
           "check_learning_drift", "gradient_flow", "quasi_static", "reduce",
           "simulate_learning", "staged", "verify"]
