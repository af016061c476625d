"""verify stage of cognitive_action: the verifier, references, laws, pytest helpers, metrics.

The limits it checks against (``reduce``, ``backprop``, ...) are derivations and live in
:mod:`cognitive_action.derive.limits`; they are re-exported here for convenience.

Names are imported on first use (PEP 562, a name → module table): importing a light
submodule such as :mod:`cognitive_action.verify.metrics` (NumPy and SciPy only) does
not load the verifier, SymPy or CasADi.

>>> from cognitive_action.verify import verify, backprop, reduce, Report
"""

from typing import TYPE_CHECKING

from cognitive_action.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from cognitive_action.errors import VerificationError
    from cognitive_action.verify.alignment import (
        AlignmentHistory,
        alignment_over_training,
        check_alignment,
    )
    from cognitive_action.verify.checks import verify
    from cognitive_action.verify.convergence import (
        check_convergence_delta,
        check_convergence_velocity,
        check_drift_rate,
        check_learning_drift,
        simulate_learning,
    )
    from cognitive_action.verify.equilibrium import check_equilibrium, verify_energy
    from cognitive_action.verify.laws import (
        BackpropRates,
        LawInput,
        LawRates,
        available_laws,
        backprop_rates,
        make_law,
        register_law,
    )
    from cognitive_action.verify.pytest_helpers import (
        assert_backprop_limit,
        assert_full_rank,
        assert_simulated_limits,
    )
    from cognitive_action.verify.report import Check, Report
    from cognitive_action.verify.speed import check_speed_backprop, check_speed_limit

__all__ = ["AlignmentHistory", "BackpropRates", "Check", "LawInput", "LawRates",
           "alignment_over_training", "available_laws", "check_alignment", "make_law",
           "register_law", "Limit", "ReducedSystem", "Report", "VerificationError",
           "assert_backprop_limit", "assert_full_rank", "assert_simulated_limits", "backprop",
           "backprop_rates",
           "check_convergence_delta", "check_convergence_velocity", "check_drift_rate",
           "check_learning_drift", "check_speed_backprop", "check_speed_limit",
           "gradient_flow", "quasi_static", "reduce",
           "simulate_learning", "staged", "verify"]
__all__ += ["check_equilibrium", "verify_energy"]

#: Where each public name lives (imported on first access).
_EXPORTS: dict[str, str] = {
    "verify": "cognitive_action.verify.checks",
    "check_equilibrium": "cognitive_action.verify.equilibrium",
    "verify_energy": "cognitive_action.verify.equilibrium",
    "check_convergence_delta": "cognitive_action.verify.convergence",
    "check_convergence_velocity": "cognitive_action.verify.convergence",
    "check_drift_rate": "cognitive_action.verify.convergence",
    "check_learning_drift": "cognitive_action.verify.convergence",
    "simulate_learning": "cognitive_action.verify.convergence",
    "check_speed_backprop": "cognitive_action.verify.speed",
    "check_speed_limit": "cognitive_action.verify.speed",
    "BackpropRates": "cognitive_action.verify.laws",
    "LawInput": "cognitive_action.verify.laws",
    "LawRates": "cognitive_action.verify.laws",
    "available_laws": "cognitive_action.verify.laws",
    "make_law": "cognitive_action.verify.laws",
    "register_law": "cognitive_action.verify.laws",
    "AlignmentHistory": "cognitive_action.verify.alignment",
    "alignment_over_training": "cognitive_action.verify.alignment",
    "check_alignment": "cognitive_action.verify.alignment",
    "backprop_rates": "cognitive_action.verify.laws",
    "Limit": "cognitive_action.derive.limits",
    "ReducedSystem": "cognitive_action.derive.limits",
    "backprop": "cognitive_action.derive.limits",
    "gradient_flow": "cognitive_action.derive.limits",
    "quasi_static": "cognitive_action.derive.limits",
    "reduce": "cognitive_action.derive.limits",
    "staged": "cognitive_action.derive.limits",
    "VerificationError": "cognitive_action.errors",
    "assert_backprop_limit": "cognitive_action.verify.pytest_helpers",
    "assert_full_rank": "cognitive_action.verify.pytest_helpers",
    "assert_simulated_limits": "cognitive_action.verify.pytest_helpers",
    "Check": "cognitive_action.verify.report",
    "Report": "cognitive_action.verify.report",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
