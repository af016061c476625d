"""Backprop diffusion on layered networks (Section 2 of Betti & Gori, 2020).

Modules
-------
``signals``    input and supervision signals (constant, sinusoids, frames, smooth, recorded)
``functions``  numeric activations σ, σ' and output losses V
``nets``       random networks and teacher supervision
``waves``      the time-delay model (1), its backward wave and the estimate (3)
``reference``  exact per-frame backprop and the frame alignment of every estimate
``compare``    per-layer metrics of the estimates (reuses ``verify.metrics``)
``sweep``      error against input speed and depth, power-law fits, tables
``online``     online learning with the wave estimates vs per-frame backprop
``figures``    Figures 1-3 and the sweep figures (needs matplotlib; imported lazily)

See ``docs/waves.md`` for the conventions, findings and measured numbers.
"""

from cognitive_action.diffusion.compare import gradient_errors
from cognitive_action.diffusion.reference import backprop_gradients, exact_window
from cognitive_action.diffusion.waves import WaveResult, fill_ticks, simulate_waves

__all__ = ["simulate_waves", "WaveResult", "fill_ticks", "backprop_gradients",
           "exact_window", "gradient_errors"]
