"""Stable ways to run anti-stable multiplier dynamics (eq. 20, design notes).

Under the paper's variational (vakonomic) rule, a non-holonomic constraint such as the
neuron (19) ``ẋ/c + x − σ(a) = 0`` gives its multiplier ``μ`` dynamics: the coordinate
rows carry ``c⁻¹(μ̇ + θ μ)``, which the compiled system solves for ``μ̇`` together with
the accelerations. Linearized, ``μ̇ ≈ c (I − (σ'W)ᵀ) μ + …``: every eigenvalue of a
feedforward net is ``+c`` (the paper's eq. 20 is anti-stable forward in time), so a
forward run blows up like ``e^{ct}``.

:func:`stable_variant` returns a compiled system that runs a stable variant instead and
says so (``system.variant``):

- ``"relaxation"``: the multiplier rate is replaced by its opposite, ``μ̇ → −μ̇``, with the
  accelerations still solved from the derived equations at the current ``μ``. The
  equilibrium (``μ̇ = 0``: for ``c → ∞`` and ``ϖ = 1`` the backprop delta ``T μ = −V_x``)
  is unchanged, and the linear part ``c (I − (σ'W)ᵀ)`` becomes ``−c (I − (σ'W)ᵀ)``:
  the stable backward diffusion wave ``c⁻¹ μ̇ = −(T μ + V_x)`` of the design notes. The
  variant checks its own spectrum at a state you pass (``check_at``) and raises
  :class:`~cognitive_action.errors.UnstableSystemError` if flipping did not stabilize it
  (a cyclic net whose ``I − (σ'W)ᵀ`` has eigenvalues of both signs).

With finite masses the flipped rate is the one the linear-solve node returns jointly
with ``q̈`` (the ``μ̇`` block of ``mass_matrix · unknowns = forcing``); only the state
equation of ``μ`` changes, every other row is the derived one.

The quasi-static reduction (``μ`` slaved to its equilibrium at every instant) is the
``m_x → 0``, ``c → ∞`` limit of :func:`~cognitive_action.derive.limits.reduce`; the adjoint
sweep (multipliers backward in time from a final condition, primal states forward) is
:func:`~cognitive_action.compile.adjoint.adjoint_sweep`, a solver rather than a changed
right-hand side.
"""

from __future__ import annotations

import dataclasses

import casadi as ca
import numpy as np

from cognitive_action.compile.system import CompiledSystem
from cognitive_action.errors import CompileError, UnstableSystemError

__all__ = ["VARIANTS", "stable_variant"]

#: Variants :func:`stable_variant` builds.
VARIANTS = ("relaxation",)


def _flip(n_keep: int, n: int) -> ca.DM:
    return ca.DM(np.r_[np.ones(n_keep), -np.ones(n - n_keep)])


def stable_variant(system: CompiledSystem, variant: str = "relaxation", *,
                   check_at: tuple[float, np.ndarray | dict, object] | None = None,
                   tol: float = 1e-8) -> CompiledSystem:
    """A compiled system whose multiplier dynamics run in a stable way.

    Parameters
    ----------
    system
        A :class:`~cognitive_action.compile.system.CompiledSystem` with multiplier
        states (non-holonomic constraints under the vakonomic rule).
    variant
        ``"relaxation"`` (see the module docstring).
    check_at
        ``(t, y, params)``: verify at this state that the variant's multiplier block
        ``∂μ̇/∂μ`` has no eigenvalue with real part above ``tol`` times its spectral
        radius.
    tol
        Relative tolerance of that check.

    Returns
    -------
    CompiledSystem
        Same states, parameters, constraints and projection; ``rhs`` (and the IDAS form)
        with ``μ̇ → −μ̇``; ``variant`` says which variant runs.

    Raises
    ------
    CompileError
        An unknown variant, or a system without multiplier states (nothing to stabilize).
    UnstableSystemError
        The variant is still unstable at ``check_at``.

    Examples
    --------
    >>> import cognitive_action as ca
    >>> from cognitive_action.declare import symbols as S
    >>> from cognitive_action.compile import compile_system
    >>> c, = S.parameters("c")
    >>> el = ca.euler_lagrange(ca.chain(3, speed=c).problem(parameters=[c]))
    >>> relaxed = stable_variant(compile_system(el))
    >>> relaxed.variant
    'relaxation'
    """
    if variant not in VARIANTS:
        raise CompileError(f"unknown variant {variant!r}",
                           fix=f"use one of {', '.join(VARIANTS)} (quasi-static: "
                           "derive.limits.reduce; adjoint: compile.adjoint_sweep)")
    if not system.multiplier_states:
        raise CompileError(f"{system.name!r} has no multiplier states: its dynamics need no "
                           "stable variant", fix="simulate the system as it is")
    n = system.n_states
    n_keep = n - len(system.multiplier_states)
    sign = _flip(n_keep, n)
    rhs = system.rhs
    tm, ym, pm = ca.MX.sym("t"), ca.MX.sym("y", n), ca.MX.sym("p", rhs.size1_in(2))
    new_rhs = ca.Function("rhs", [tm, ym, pm], [sign * rhs(tm, ym, pm)], ["t", "y", "p"],
                          ["ydot"])
    dae = system.dae
    if dae is not None:
        f = dae["function"]
        zm = ca.MX.sym("z", f.size1_in(2))
        ode, alg = f(tm, ym, zm, pm)
        dae = dict(dae) | {"function": ca.Function("dae", [tm, ym, zm, pm],
                                                   [sign * ode, alg],
                                                   ["t", "y", "z", "p"], ["ode", "alg"])}
    out = dataclasses.replace(system, rhs=new_rhs, dae=dae, name=f"{system.name} ({variant})",
                              variant=variant, _cache={})
    if check_at is not None:
        # The multiplier block ∂μ̇/∂μ: the mechanical part (undamped weights at ϖ = 1)
        # may oscillate with small growth of its own; the instability of eq. (20) is here.
        t0, y0, params = check_at
        jac = out.jacobian(t0, out.state_vector(y0) if isinstance(y0, dict) else y0, params)
        eig = np.linalg.eigvals(jac[n_keep:, n_keep:])
        k = int(np.argmax(eig.real))
        radius = float(np.max(np.abs(eig))) or 1.0
        if eig[k].real > tol * radius:
            raise UnstableSystemError(
                f"{out.name!r} is still unstable at t = {t0:g}: eigenvalue "
                f"{eig[k].real:.4g}{eig[k].imag:+.3g}j (flipping the multiplier rate did not "
                "stabilize it: T has eigenvalues of both signs)",
                fix="use the quasi-static reduction (derive.limits.reduce) or a shorter "
                "horizon", time=float(t0), eigenvalue=complex(eig[k]))
    return out
