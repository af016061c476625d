"""Equilibrium propagation against recurrent backprop at the free fixed point.

The EP update of an :class:`~cognitive_action.declare.energy.EnergyModel`
(:func:`~cognitive_action.compile.energy.equilibrium_update`) estimates ``-dJ/dW``,
``J(W) = C(x⁰(W), y)`` the cost at the free fixed point (Scellier & Bengio 2017,
Theorem 1). The reference here does not use the derived phase dynamics nor the EP
formula: it is recurrent backprop, i.e. implicit differentiation of the fixed point
of the *declared* energy with CasADi AD,

    ∂E/∂x (x⁰, W) = 0   ⇒   dx⁰/dW = -(∂²E/∂x²)⁻¹ ∂²E/∂x∂W,
    dJ/dW = ∂C/∂x · dx⁰/dW,

(:func:`implicit_gradient`), itself checked against central differences of the
fixed-point solve (:func:`fixed_point_finite_differences`).

:func:`check_equilibrium` gives the verifier's checks of an energy model:

``energy.fixed_point``
    The free phase relaxes to a minimum of ``E`` (residual, smallest Hessian
    eigenvalue, symmetry of the derived Jacobian: a gradient flow).
``ep.reference``
    Implicit differentiation against finite differences of the fixed-point solve.
``ep.one_sided.order`` / ``ep.symmetric.order``
    The fitted order in ``β`` of the relative error of the EP update against the
    reference, with its confidence interval (:func:`~cognitive_action.verify.asymptotic.
    search_order`): 1 for one-sided nudging (the first Taylor term of
    ``∂E/∂W(x^β)`` in ``β`` survives), 2 for symmetric ``±β`` nudging (even terms cancel;
    Laborieux et al. 2021).
``ep.one_sided.metrics`` / ``ep.symmetric.metrics``
    At one ``β``, per parameter tensor (``model.groups``): the relative RMSE
    ``sqrt(mean((a - g)²)) / max(rms a, rms g)`` and the fraction of entries of
    opposite sign, the EP-versus-BPTT metrics of Laborieux et al. (2021), with cosine and
    angle.
``ep.symmetric_vs_one_sided``
    At that ``β``, symmetric nudging is closer to the reference than one-sided.

:func:`verify_energy` gathers them in a :class:`~cognitive_action.verify.report.Report`
(``verify(model)`` calls it).

Examples
--------
>>> from cognitive_action.declare.energy import hopfield
>>> report = verify_energy(hopfield([2, 3, 1]), seed=1)
>>> report.passed, report["ep.symmetric.order"].status
(True, 'pass')
>>> round(report["ep.one_sided.order"].value), round(report["ep.symmetric.order"].value)
(1, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import casadi as ca
import numpy as np

from cognitive_action.compile.energy import (
    NUDGINGS,
    CompiledEnergy,
    EnergyFixedPoint,
    RelaxOptions,
    compile_energy,
    equilibrium_update,
)
from cognitive_action.compile.translate import Translator
from cognitive_action.declare.energy import EnergyModel
from cognitive_action.errors import DeclarationError, FixedPointError, ShapeError
from cognitive_action.verify import metrics
from cognitive_action.verify.asymptotic import order_check, search_order
from cognitive_action.verify.report import Check, Report

__all__ = ["ImplicitGradient", "implicit_gradient", "fixed_point_finite_differences",
           "relative_rmse", "sign_error_fraction", "group_metrics", "energy_state",
           "EnergyState", "check_equilibrium", "verify_energy", "Update",
           "EXPECTED_ORDERS"]

#: Expected order in ``β`` of the EP error, and why.
EXPECTED_ORDERS = {"one_sided": (1.0, "one-sided nudging keeps the O(beta) Taylor term of "
                                 "dE/dW(x_beta)"),
                   "symmetric": (2.0, "symmetric +-beta nudging cancels the even terms, "
                                 "leaving O(beta^2)")}

#: An update to judge: ``(compiled, weights, values, beta, nudging, free) -> ΔW``.
Update = Callable[[CompiledEnergy, np.ndarray, Mapping[str, float], float, str,
                   EnergyFixedPoint], np.ndarray]


def _ep(ce: CompiledEnergy, w: np.ndarray, values: Mapping[str, float], beta: float,
        nudging: str, free: EnergyFixedPoint) -> np.ndarray:
    return equilibrium_update(ce, w, values, beta=beta, nudging=nudging, free=free).delta_w


# -- the reference ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ImplicitGradient:
    """Recurrent backprop at the free fixed point.

    Attributes
    ----------
    grad
        ``dJ/dW`` (``model.learnable`` order); the EP update estimates ``-grad``.
    x
        The free fixed point (Newton on the AD gradient of the declared ``E``).
    residual
        ``max |∂E/∂x|`` there.
    dx_dw
        ``dx⁰/dW``, neurons × learnable.
    """

    grad: np.ndarray
    x: np.ndarray
    residual: float
    dx_dw: np.ndarray


class _Declared:
    """CasADi functions of the declared ``E`` and ``C`` (translation only, AD)."""

    def __init__(self, model: EnergyModel) -> None:
        x = ca.SX.sym("x", len(model.neurons))
        w = ca.SX.sym("w", len(model.learnable))
        rest = (*model.parameters, *model.inputs, *model.targets)
        q = ca.SX.sym("q", len(rest))
        self.rest = tuple(str(s) for s in rest)
        tr = Translator({str(s): x[i] for i, s in enumerate(model.neurons)}
                        | {str(s): w[i] for i, s in enumerate(model.learnable)}
                        | {n: q[i] for i, n in enumerate(self.rest)})
        E, C = tr(model.energy), tr(model.cost)
        gx = ca.gradient(E, x)
        self.grad_x = ca.Function("dE_dx", [x, w, q], [gx])
        self.hess = ca.Function("d2E_dx2", [x, w, q], [ca.jacobian(gx, x)])
        self.mixed = ca.Function("d2E_dxdw", [x, w, q], [ca.jacobian(gx, w)])
        self.cost_x = ca.Function("dC_dx", [x, q], [ca.gradient(C, x)])
        self.cost = ca.Function("C", [x, q], [C])

    def q(self, values: Mapping[str, float]) -> np.ndarray:
        missing = [n for n in self.rest if n not in values]
        if missing:
            raise DeclarationError(f"no value for {', '.join(missing)}",
                                   fix="give the inputs, targets and constants by name")
        return np.array([float(values[n]) for n in self.rest])

    def newton(self, x0: np.ndarray, w: np.ndarray, q: np.ndarray, tol: float = 1e-14,
               max_iter: int = 50) -> tuple[np.ndarray, float]:
        x = np.array(x0, dtype=float)
        res = float(np.max(np.abs(np.asarray(self.grad_x(x, w, q)))))
        for _ in range(max_iter):
            if res <= tol:
                break
            g = np.asarray(self.grad_x(x, w, q)).reshape(-1)
            x = x - np.linalg.solve(np.asarray(self.hess(x, w, q)), g)
            new = float(np.max(np.abs(np.asarray(self.grad_x(x, w, q)))))
            if new >= res and new <= 100 * tol:
                res = new
                break
            res = new
        return x, res


def implicit_gradient(model: EnergyModel, weights: np.ndarray, values: Mapping[str, float],
                      x0: np.ndarray, *, _declared: _Declared | None = None
                      ) -> ImplicitGradient:
    """``dJ/dW`` by implicit differentiation of the free fixed point (module docstring).

    Parameters
    ----------
    model
        The energy model.
    weights
        Learnable values in ``model.learnable`` order.
    values
        Inputs, targets and constants by name.
    x0
        A start near the free fixed point (Newton on ``∂E/∂x = 0`` polishes it).

    Raises
    ------
    FixedPointError
        Newton does not reach ``∂E/∂x = 0`` from ``x0`` or the Hessian there is not
        positive definite.
    """
    d = _declared or _Declared(model)
    w = np.asarray(weights, dtype=float)
    q = d.q(values)
    x, res = d.newton(x0, w, q)
    H = np.asarray(d.hess(x, w, q))
    eig = float(np.min(np.linalg.eigvalsh((H + H.T) / 2)))
    if not res <= 1e-10 or eig <= 0:
        raise FixedPointError(f"the reference found no minimum of E near the given start "
                              f"(residual {res:.2e}, smallest Hessian eigenvalue {eig:.3g})",
                              fix="start from the free fixed point", residual=res,
                              min_eigenvalue=eig)
    dx_dw = -np.linalg.solve(H, np.asarray(d.mixed(x, w, q)))
    grad = np.asarray(d.cost_x(x, q)).reshape(-1) @ dx_dw
    return ImplicitGradient(grad=grad, x=x, residual=res, dx_dw=dx_dw)


def fixed_point_finite_differences(model: EnergyModel, weights: np.ndarray,
                                   values: Mapping[str, float], x0: np.ndarray, *,
                                   columns: Iterable[int] | None = None, h: float = 1e-4,
                                   _declared: _Declared | None = None) -> np.ndarray:
    """Central differences of ``J(W) = C(x⁰(W), y)``, the fixed point re-solved (Newton
    from ``x0``) at each perturbed weight, with one Richardson step (``h`` and ``h/2``).

    Returns the derivatives along ``columns`` (default: every learnable symbol).
    """
    d = _declared or _Declared(model)
    w = np.asarray(weights, dtype=float)
    q = d.q(values)
    cols = list(range(len(w))) if columns is None else list(columns)

    def J(wv: np.ndarray) -> float:
        x, _ = d.newton(x0, wv, q)
        return float(d.cost(x, q))

    out = []
    for k in cols:
        def diff(step: float, k: int = k) -> float:
            e = np.zeros_like(w)
            e[k] = step
            return (J(w + e) - J(w - e)) / (2 * step)
        out.append((4 * diff(h / 2) - diff(h)) / 3)
    return np.array(out)


# -- metrics (Laborieux et al. 2021) ----------------------------------------------------------
def _pair(a: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, g = np.asarray(a, dtype=float), np.asarray(g, dtype=float)
    if a.shape != g.shape or a.size == 0:
        raise ShapeError(f"estimate has shape {a.shape} but reference has shape {g.shape}",
                         fix="compare arrays of the same, non-empty shape")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(g))):
        raise DeclarationError("an estimate or reference entry is NaN or infinite",
                               fix="check the computation that produced it")
    return a, g


def relative_rmse(a: np.ndarray, g: np.ndarray) -> float:
    """``sqrt(mean((a - g)²)) / max(rms a, rms g)``: the EP-versus-BPTT relative RMSE.

    >>> relative_rmse(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    >>> relative_rmse(np.array([-1.0, -2.0]), np.array([1.0, 2.0]))
    2.0
    """
    a, g = _pair(a, g)
    scale = max(float(np.sqrt(np.mean(a * a))), float(np.sqrt(np.mean(g * g))))
    if scale == 0.0:
        return 0.0
    return float(np.sqrt(np.mean((a - g) ** 2)) / scale)


def sign_error_fraction(a: np.ndarray, g: np.ndarray) -> float:
    """The fraction of entries whose signs differ (``1 - sign agreement``).

    >>> round(sign_error_fraction(np.array([1.0, -1.0, 2.0]), np.array([1.0, 1.0, 2.0])), 12)
    0.333333333333
    """
    a, g = _pair(a, g)
    return float(np.mean(np.sign(a) != np.sign(g)))


def group_metrics(estimate: np.ndarray, reference: np.ndarray, model: EnergyModel
                  ) -> list[dict]:
    """Per parameter tensor (``model.groups``): relative RMSE, sign-error fraction,
    cosine and angle (degrees; None for a zero vector), entries."""
    index = {w: i for i, w in enumerate(model.learnable)}
    rows = []
    for name, members in model.groups.items():
        idx = [index[w] for w in members]
        a, g = estimate[idx], reference[idx]
        cos = ang = None
        if np.any(a) and np.any(g):
            cos = float(metrics.cosine_similarity(a, g))
            ang = float(metrics.angle_degrees(a, g))
        rows.append({"group": name, "entries": len(idx),
                     "relative_rmse": relative_rmse(a, g),
                     "sign_errors": sign_error_fraction(a, g),
                     "cosine": cos, "angle": ang})
    return rows


# -- a state -----------------------------------------------------------------------------------
@dataclass
class EnergyState:
    """Weights and signals at which the law is judged, with the free fixed point.

    ``free`` is ``None`` and ``error`` says why when no fixed point was found.
    """

    weights: np.ndarray
    values: dict[str, float]
    free: EnergyFixedPoint | None
    error: FixedPointError | None = None
    halvings: int = 0
    given: bool = False


def energy_state(ce: CompiledEnergy, *, seed: int = 0, scale: float = 1.0,
                 values: Mapping[str, float] | None = None,
                 options: RelaxOptions | None = None) -> EnergyState:
    """Learnable symbols ``N(0, scale²)`` (or given by name in ``values``), inputs
    ``N(0, 1)``, targets ``U(0, 1)``, other constants 1, and the free fixed point.

    Drawn weights are halved (at most 10 times) while the free phase has no fixed point;
    given weights are kept, and the failure is in ``error``.
    """
    m = ce.model
    rng = np.random.default_rng(seed)
    vals = {str(k): float(v) for k, v in (values or {}).items()}
    names = [str(w) for w in m.learnable]
    drawn = rng.normal(0.0, scale, len(names))
    given = all(n in vals for n in names)
    w = np.array([vals[n] for n in names]) if given else drawn
    for s in m.inputs:
        vals.setdefault(str(s), float(rng.standard_normal()))
    for s in m.targets:
        vals.setdefault(str(s), float(rng.uniform(0.0, 1.0)))
    for s in m.parameters:
        vals.setdefault(str(s), 1.0)
    sig = {k: v for k, v in vals.items() if k not in names}
    halvings = 0
    while True:
        try:
            return EnergyState(w, sig, ce.relax(w, sig, options=options), None, halvings,
                               given)
        except FixedPointError as exc:
            if given or halvings >= 10:
                return EnergyState(w, sig, None, exc, halvings, given)
            w = w / 2
            halvings += 1


# -- checks ------------------------------------------------------------------------------------
def _skip(name: str, why: str) -> Check:
    return Check(name, "skip", message=why, details={"skipped": "not applicable"})


def _metrics_message(rows: list[dict]) -> str:
    return "; ".join(f"{r['group']}: rel. RMSE {r['relative_rmse']:.2e}, sign errors "
                     f"{round(r['sign_errors'] * r['entries'])}/{r['entries']}" for r in rows)


def check_equilibrium(model: EnergyModel | CompiledEnergy, *, seed: int = 0,
                      values: Mapping[str, float] | None = None, scale: float = 1.0,
                      metric_beta: float = 0.01, rmse_tol: float = 0.05,
                      order_tols: Mapping[str, float] | None = None,
                      betas: Sequence[float] = (0.2, 0.1, 0.05), fd_rtol: float = 1e-6,
                      fd_columns: int = 8, update: Update | None = None,
                      skip: Iterable[str] = (), options: RelaxOptions | None = None
                      ) -> list[Check]:
    """The checks of an energy model (module docstring).

    Parameters
    ----------
    model
        The model (or compiled).
    seed, values, scale
        The state (:func:`energy_state`).
    metric_beta, rmse_tol
        The ``β`` of the metrics checks and the largest per-tensor relative RMSE that
        passes there.
    order_tols
        ``{"one_sided": 0.15, "symmetric": 0.2}``: a stable fitted order passes within it.
    betas
        First values of ``β`` of the order search (continued geometrically toward 0).
    fd_rtol, fd_columns
        Tolerance of the reference against finite differences, and on how many
        learnable symbols (spread over the vector) they are taken.
    update
        The law to judge (default: the EP update); e.g. a planted wrong-sign estimate.
    skip
        Names (or prefixes) of checks not to run.
    options
        :class:`~cognitive_action.compile.energy.RelaxOptions`.
    """
    ce = model if isinstance(model, CompiledEnergy) else compile_energy(model)
    m = ce.model
    law = update or _ep
    tols = {"one_sided": 0.15, "symmetric": 0.2} | dict(order_tols or {})
    skip = tuple(skip)
    wanted = lambda n: not any(n.startswith(s) for s in skip)  # noqa: E731
    names = ["energy.fixed_point", "ep.reference"] + [
        f"ep.{k}.{w}" for k in NUDGINGS for w in ("order", "metrics")] + [
        "ep.symmetric_vs_one_sided"]
    st = energy_state(ce, seed=seed, scale=scale, values=values, options=options)
    out: list[Check] = []
    notes = {"weights": "given" if st.given else f"drawn N(0, {scale:g}^2)",
             "weight_halvings": st.halvings}
    if st.free is None:
        out.append(Check("energy.fixed_point", "fail", None, None,
                         f"the free phase x_dot = -dE/dx has no usable fixed point at the "
                         f"{'given' if st.given else 'drawn'} weights: {st.error}",
                         notes | {"residual": st.error.residual,
                                  "min_eigenvalue": st.error.min_eigenvalue}))
        out += [_skip(n, "no free fixed point, so no EP update and no recurrent-backprop "
                      "reference") for n in names[1:]]
        return out
    fp = st.free
    gradient_flow = fp.asymmetry <= 1e-9
    out.append(Check(
        "energy.fixed_point", "pass" if gradient_flow else "fail", fp.min_eigenvalue, 0.0,
        ("free phase relaxes to a " + fp.describe() if gradient_flow else
         f"the derived dynamics are not a gradient flow: their Jacobian is asymmetric "
         f"(relative {fp.asymmetry:.2e})"),
        notes | {"x": fp.x, "residual": fp.residual, "asymmetry": fp.asymmetry,
                 "relax_time": fp.relax_time, "newton_steps": fp.newton_steps}))
    d = _Declared(m)
    ref = implicit_gradient(m, st.weights, st.values, fp.x, _declared=d)
    g = -ref.grad  # what the EP update estimates
    if wanted("ep.reference"):
        n = len(g)
        cols = np.unique(np.linspace(0, n - 1, min(fd_columns, n)).round().astype(int))
        fd = fixed_point_finite_differences(m, st.weights, st.values, fp.x, columns=cols,
                                            _declared=d)
        err = float(np.max(np.abs(fd - ref.grad[cols])) /
                    max(float(np.max(np.abs(ref.grad))), 1e-300))
        out.append(Check("ep.reference", "pass" if err <= fd_rtol else "fail", err, fd_rtol,
                         f"recurrent backprop (implicit differentiation, CasADi AD) against "
                         f"central differences of the fixed-point solve on {len(cols)} of "
                         f"{n} weights: max error {err:.1e} relative to max |dJ/dW|",
                         {"columns": cols, "finite_differences": fd,
                          "implicit": ref.grad[cols], "fixed_point_distance":
                          float(np.max(np.abs(ref.x - fp.x)))}))
    else:
        out.append(Check("ep.reference", "skip", message=f"skipped by request ({skip})",
                         details={"skipped": "request"}))
    if not np.any(g):
        out += [_skip(n, "dJ/dW = 0 at this state: a relative error is undefined")
                for n in names[2:]]
        return out

    def estimate(beta: float, nudging: str) -> np.ndarray:
        return np.asarray(law(ce, st.weights, st.values, beta, nudging, fp), dtype=float)

    def rel(beta: float, nudging: str) -> float:
        return float(metrics.relative_error(estimate(beta, nudging), g))

    at: dict[str, float] = {}
    for nudging in NUDGINGS:
        expected, why = EXPECTED_ORDERS[nudging]
        name = f"ep.{nudging}.order"
        if wanted(name):
            try:
                search = search_order(lambda b, k=nudging: rel(b, k), betas,
                                      precision=tols[nudging], max_points=14, floor=1e-11)
                out.append(order_check(name, search, expected=expected,
                                       order_tol=tols[nudging], parameter="beta",
                                       what=f"{nudging.replace('_', '-')} EP update -> "
                                       f"-dJ/dW (recurrent backprop)",
                                       details={"why": why}))
            except FixedPointError as exc:
                out.append(Check(name, "fail", None, expected, f"a nudged phase has no "
                                 f"fixed point: {exc}"))
        else:
            out.append(Check(name, "skip", message="skipped by request",
                             details={"skipped": "request"}))
        name = f"ep.{nudging}.metrics"
        if not wanted(name):
            out.append(Check(name, "skip", message="skipped by request",
                             details={"skipped": "request"}))
            continue
        try:
            a = estimate(metric_beta, nudging)
        except FixedPointError as exc:
            out.append(Check(name, "fail", None, rmse_tol, f"a nudged phase has no fixed "
                             f"point at beta = {metric_beta:g}: {exc}"))
            continue
        rows = group_metrics(a, g, m)
        at[nudging] = float(metrics.relative_error(a, g))
        worst = max(r["relative_rmse"] for r in rows)
        out.append(Check(name, "pass" if worst <= rmse_tol else "fail", worst, rmse_tol,
                         f"beta = {metric_beta:g}, per tensor against recurrent backprop: "
                         + _metrics_message(rows),
                         {"beta": metric_beta, "groups": rows, "estimate": a,
                          "reference": g, "relative_error": at[nudging]}))
    name = "ep.symmetric_vs_one_sided"
    if len(at) == 2 and wanted(name):
        ok = at["symmetric"] < at["one_sided"]
        out.append(Check(name, "pass" if ok else "fail", at["symmetric"], at["one_sided"],
                         f"beta = {metric_beta:g}: relative error {at['symmetric']:.2e} "
                         f"(symmetric) against {at['one_sided']:.2e} (one-sided)"
                         + ("" if ok else ": symmetric nudging should be closer"),
                         {"beta": metric_beta} | at))
    else:
        out.append(Check(name, "skip", message="needs both metrics checks",
                         details={"skipped": "request" if not wanted(name) else
                                  "not applicable"}))
    return out


def verify_energy(model: EnergyModel, *, seed: int = 0,
                  values: Mapping[str, float] | None = None, skip: Iterable[str] = (),
                  **options: object) -> Report:
    """The verifier's :class:`~cognitive_action.verify.report.Report` on an energy model
    (:func:`check_equilibrium`; ``options`` are its keyword arguments)."""
    if not isinstance(model, EnergyModel):
        raise DeclarationError(f"verify_energy takes an EnergyModel, got "
                               f"{type(model).__name__}",
                               fix="declare it with declare.energy.hopfield(...)")
    return Report(model.name, check_equilibrium(model, seed=seed, values=values, skip=skip,
                                                **options))
