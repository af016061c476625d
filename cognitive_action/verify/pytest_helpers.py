"""Assertions for users' own pytest suites.

Each helper runs the relevant checks of :mod:`cognitive_action.verify.checks` and
raises :class:`VerificationError` (an ``AssertionError``) with a readable table of
what disagreed: the measured values, the tolerances and, for learning laws, the
per-layer cosine, angle, relative error and sign agreement.

Examples
--------
>>> import sympy as sp
>>> import cognitive_action as ca
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.verify.laws import sign_flipped
>>> theta, = S.parameters("theta")
>>> p = ca.xor().problem(weight=sp.exp(theta * S.t), parameters=[theta])
>>> assert_full_rank(p)
>>> assert_backprop_limit(p, symbolic=False)
>>> try:
...     assert_backprop_limit(p, law=sign_flipped(), symbolic=False)
... except VerificationError as exc:
...     print(str(exc).splitlines()[-1])
        2        2          2           1   -1.0000         180       0.00
"""

from __future__ import annotations

from collections.abc import Mapping

from cognitive_action.declare.problem import Problem
from cognitive_action.derive.network import is_network_problem
from cognitive_action.errors import (
    DerivationError,
    InconsistentInitialConditionsError,
    VerificationError,
)
from cognitive_action.verify.budget import DEFAULT_BUDGET, run_with_budget
from cognitive_action.verify.checks import (
    SYMBOLIC_MAX,
    check_backprop_numeric,
    check_backprop_symbolic,
    check_rank,
    check_rank_symbolic,
)
from cognitive_action.verify.laws import Law, LearningLaw, as_learning_law
from cognitive_action.verify.report import Check, Report

__all__ = ["VerificationError", "assert_backprop_limit", "assert_full_rank",
           "assert_simulated_limits", "explain"]


def explain(checks: list[Check]) -> str:
    """A table of the failed checks with their per-layer details."""
    failed = [c for c in checks if c.status == "fail"]
    lines = [str(Report("", failed)).split("\n", 1)[1]] if failed else []
    lines += [f"  {c.message}" for c in failed if c.details.get("layers")]
    for c in failed:
        layers = c.details.get("layers")
        if layers:
            lines.append(f"  {c.name}, per layer (against the gradient):")
            lines.append("    layer  weights  rel.error  norm ratio  cosine    angle(deg)  "
                         "sign agr.")
            for r in layers:
                lines.append(f"    {r['layer']:>5}  {r['weights']:>7}  "
                             f"{r['relative_error']:>9.3g}  {r.get('norm_ratio', 1.0):>10.4g}  "
                             f"{r['cosine']:>8.4f}  {r['angle_deg']:>10.4g}  "
                             f"{r['sign_agreement']:>9.2f}")
        errors = c.details.get("errors")
        params = next((c.details[k] for k in ("thetas", "masses") if k in c.details), None)
        if errors is not None and params is not None:
            lines.append(f"  {c.name}, error per parameter (fitted order {c.value:.3f}):")
            lines += [f"    {float(p):<10.4g} {float(e):.3e}" for p, e in zip(params, errors)]
        diffs = c.details.get("differences")
        if diffs:
            lines.append(f"  {c.name}, differences (derived - reference):")
            lines += [f"    {k}: {v}" for k, v in diffs.items()]
    return "\n".join(lines)


def _budgeted(name: str, fn, budget: float | None) -> Check:
    got = run_with_budget(fn, budget)
    if got.timed_out:
        return Check(name, "skip", None, budget, f"ran out of its {budget:g} s budget",
                     {"skipped": "timeout"})
    if got.error is not None:
        raise got.error
    return got.value


def assert_backprop_limit(problem: Problem, *, rtol: float = 1e-9, fd_rtol: float = 1e-6,
                          law: Law | LearningLaw | None = None, gamma: float = 1.0,
                          seed: int = 0,
                          symbolic: bool | None = None,
                          values: Mapping[str, float] | None = None,
                          budget: float | None = DEFAULT_BUDGET) -> None:
    """Assert that the learning law reduces to backprop (eq. 15-17) in the limit.

    Parameters
    ----------
    problem
        A feedforward network problem (``ϖ = exp(θt)`` for the symbolic check).
    rtol, fd_rtol
        Relative tolerances against CasADi AD and finite differences.
    law
        The law to check (default: the derived one): a
        :data:`~cognitive_action.verify.laws.Law` or a
        :data:`~cognitive_action.verify.laws.LearningLaw`.
    gamma, seed
        ``γ`` of the limit and the seed of the random state, as in
        :func:`~cognitive_action.verify.checks.verify`.
    symbolic
        Also run the symbolic check (default: for networks of at most
        :data:`~cognitive_action.verify.checks.SYMBOLIC_MAX` neurons and no custom
        ``law``), under ``budget`` seconds.
    values
        Numbers for parameters and signals, as in
        :func:`~cognitive_action.verify.checks.verify`.
    budget
        Seconds the symbolic check may take; past it, it is left out.

    Raises
    ------
    VerificationError
        With the table of disagreeing checks and the per-layer metrics; also when the
        law cannot be evaluated against the reference (the derivation's message and
        fix).
    """
    if law is not None:
        law = as_learning_law(law)
    try:
        checks = check_backprop_numeric(problem, law=law, gamma=gamma, rtol=rtol,
                                        fd_rtol=fd_rtol, seed=seed, values=values)
        if symbolic is None:  # the symbolic check reduces plain feedforward templates
            from cognitive_action.verify.kinds import backprop_kind

            kind = backprop_kind(problem)
            symbolic = law is None and kind.name == "feedforward" and kind.templates \
                and len(problem.network.order) <= SYMBOLIC_MAX
        if symbolic:
            checks.append(_budgeted("backprop.symbolic",
                                    lambda: check_backprop_symbolic(problem, seed=seed),
                                    budget))
    except (DerivationError, InconsistentInitialConditionsError) as exc:
        raise VerificationError(f"backprop limit not verified: {exc}") from exc
    if any(c.status == "fail" for c in checks):
        raise VerificationError("backprop limit not reached\n" + explain(checks))


def assert_full_rank(problem: Problem, *, tol: float = 1e-10, seed: int = 0,
                     values: Mapping[str, float] | None = None,
                     symbolic: bool | None = None,
                     budget: float | None = DEFAULT_BUDGET) -> None:
    """Assert Proposition 1: the constraint Jacobian has full rank.

    Numerically at random states (any size), and symbolically under ``budget``
    seconds: the triangular certificate at any size, row reduction up to
    :data:`~cognitive_action.verify.checks.SYMBOLIC_MAX` constraints (any size with
    ``symbolic=True``; none with ``False``).

    Parameters
    ----------
    problem
        The declared problem.
    tol, seed
        Relative singular-value tolerance and the seed of the random states.
    values
        Numbers for parameters and signals, as in
        :func:`~cognitive_action.verify.checks.verify`.
    symbolic, budget
        As in :func:`~cognitive_action.verify.checks.verify`.

    Raises
    ------
    VerificationError
        Naming the dependent constraints.
    """
    try:
        checks = [check_rank(problem, tol=tol, seed=seed, values=values)]
        if symbolic is not False:
            checks.append(_budgeted("rank.symbolic", lambda: check_rank_symbolic(
                problem, seed=seed, values=values,
                reduce_max=None if symbolic else SYMBOLIC_MAX), budget))
    except (DerivationError, InconsistentInitialConditionsError) as exc:
        raise VerificationError(f"rank not verified: {exc}") from exc
    if any(c.status == "fail" for c in checks):
        what = "G_xi" if is_network_problem(problem) else "G_q"
        raise VerificationError(f"{what} is rank deficient\n" + explain(checks))


def assert_simulated_limits(problem: Problem, *, seed: int = 0, gamma: float = 1.0,
                            values: Mapping[str, float] | None = None,
                            expected: float = 1.0, order_tol: float = 0.15) -> None:
    """Assert the orders of convergence measured on simulations (seconds).

    Runs :func:`~cognitive_action.verify.convergence.check_convergence_velocity`
    (``Ẇ → −∇V̄/γ`` as ``θ → ∞``, eq. 13 → 14) and
    :func:`~cognitive_action.verify.convergence.check_convergence_delta`
    (``δ → `` backprop deltas as ``m_x → 0``, eq. 17), both of expected order 1.

    Raises
    ------
    VerificationError
        With the fitted orders and the error at every parameter value.
    """
    from cognitive_action.verify.convergence import (
        check_convergence_delta,
        check_convergence_velocity,
    )

    checks = [check_convergence_velocity(problem, gamma=gamma, seed=seed, values=values,
                                         expected=expected, order_tol=order_tol),
              check_convergence_delta(problem, seed=seed, values=values,
                                      expected=expected, order_tol=order_tol)]
    if any(c.status == "fail" for c in checks):
        raise VerificationError("simulated limits not reached at the expected order\n"
                                + explain(checks))
