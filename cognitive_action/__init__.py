"""cognitive_action: learning laws as variational problems.

Declare an action functional and its constraints, derive the constrained
Euler-Lagrange and Lagrange-multiplier equations with SymPy, compile them with
CasADi, and verify the theoretical limits of Betti & Gori, "Backprop Diffusion is
Biologically Plausible" (2020).
"""

from cognitive_action import errors

__version__ = "0.1.0"
__all__ = ["errors", "__version__"]
