"""Predictive coding derived from its declared energy: inference dynamics and weight update.

From a :class:`~cognitive_action.declare.predictive_coding.PredictiveCoding` energy
``F(x, μ)`` with predictions ``μ_i = σ_i(Σ_k w_ik x_k)``, SymPy derives, by the chain
rule through the prediction units,

- the inference dynamics of every value unit (Whittington & Bogacz 2017, eq. for
  ``ẋ``), ``ẋ_j = −∂F/∂x_j = −(∂F/∂x_j|_μ + Σ_i ∂F/∂μ_i ∂μ_i/∂x_j)``;
- the weight update ``Ẇ_ik = −∂F/∂w_ik = −∂F/∂μ_i ∂μ_i/∂w_ik``.

Both are kept in this *local form*: partial derivatives of ``F`` (functions of the value
and prediction units) times derivatives of the predictions (functions of the state the
predictions are linearised at). At the inference equilibrium the predictions are those
of the current values; under the fixed-prediction schedule (Song et al. 2020, Millidge
et al. 2022) they and their Jacobian stay at the feedforward pass. The library never
writes ``ε_i σ'(a_i) w_ij``: it is what ``sympy.diff`` returns for the declared energy
(``tests/test_predictive_coding.py`` checks the local form against ``sympy.diff`` of
the closed energy).

Examples
--------
>>> from cognitive_action.declare.network import chain
>>> from cognitive_action.declare.predictive_coding import PredictiveCoding
>>> pcs = derive_predictive_coding(PredictiveCoding(chain(3)))
>>> pcs.value_rates[pcs.model.network.x[2]]
-beta*w3_2*(1 - tanh(w3_2*x2)**2)*(mu3 - y3) + mu2 - x2
>>> pcs.in_error_units(pcs.value_rates[pcs.model.network.x[2]])
beta*eps3*w3_2*(1 - tanh(w3_2*x2)**2) - eps2
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import sympy as sp

from cognitive_action.declare.predictive_coding import PredictiveCoding
from cognitive_action.derive.latex import symbol_names
from cognitive_action.errors import DeclarationError

__all__ = ["PredictiveCodingSystem", "derive_predictive_coding"]

_Z = sp.Symbol("_z", real=True)


@dataclass(frozen=True)
class PredictiveCodingSystem:
    """The derived inference dynamics and weight update of a predictive coding network.

    Attributes
    ----------
    model
        The declaration.
    grad_x
        ``{x_j: ∂F/∂x_j}`` at fixed predictions, for every value unit that is not an
        output (free and clamped): functions of ``x``, ``μ``.
    grad_mu
        ``{μ_i: ∂F/∂μ_i}``: functions of ``x``, ``μ``, ``y``, ``β``.
    dmu_dx
        ``{(μ_i, x_j): ∂μ_i/∂x_j}`` for every arc ``j → i``: functions of ``x``, ``w``.
    dmu_dw
        ``{(μ_i, w_ik): ∂μ_i/∂w_ik}`` for every weight: functions of ``x``, ``w``.
    value_rates
        ``{x_j: −∂F/∂x_j}`` in local form (the predictions ``μ`` as symbols, their
        derivatives in ``x``), for the value units that are not outputs.
    weight_rates
        ``{w: −∂F/∂w}`` in local form, in ``network.weights`` order.
    """

    form = "predictive_coding"

    model: PredictiveCoding
    grad_x: dict[sp.Symbol, sp.Expr]
    grad_mu: dict[sp.Symbol, sp.Expr]
    dmu_dx: dict[tuple[sp.Symbol, sp.Symbol], sp.Expr]
    dmu_dw: dict[tuple[sp.Symbol, sp.Symbol], sp.Expr]
    value_rates: dict[sp.Symbol, sp.Expr] = field(repr=False)
    weight_rates: dict[sp.Symbol, sp.Expr] = field(repr=False)

    def closed(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with every prediction ``μ_i`` replaced by ``σ_i(a_i)``: the
        equilibrium form, a function of ``x``, ``w``, the signals and ``β``."""
        return expr.xreplace(self.model.prediction_exprs)

    def in_error_units(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the error units' expressions written as ``ε_j`` (for reading)."""
        for eps, e in self.model.error_exprs.items():
            expr = expr.subs(e, eps).subs(sp.expand(-e), -eps)
        return expr

    def latex_rates(self) -> list[str]:
        """LaTeX rows ``ẋ_j = …`` then ``ẇ = …``, written with the error units."""
        rows = []
        for lhs, group in ((_dot_name, self.value_rates), (_dot_name, self.weight_rates)):
            for s, rhs in group.items():
                if s in self.model.clamped:
                    continue
                r = self.in_error_units(rhs)
                names = symbol_names(r) | {e: rf"\varepsilon_{{{str(e)[3:]}}}"
                                           for e in self.model.errors.values()}
                names |= {m: rf"\mu_{{{str(m)[2:]}}}" for m in self.model.predictions.values()}
                if isinstance(self.model.precision, sp.Symbol):
                    names[self.model.precision] = r"\beta"
                rows.append(f"{lhs(s)} &= {sp.latex(r, symbol_names=names)}")
        return rows

    def latex_declaration(self) -> list[str]:
        """LaTeX rows of the declaration: predictions, error units and energy."""
        m = self.model
        names = {e: rf"\varepsilon_{{{str(e)[3:]}}}" for e in m.errors.values()}
        names |= {u: rf"\mu_{{{str(u)[2:]}}}" for u in m.predictions.values()}
        if isinstance(m.precision, sp.Symbol):
            names[m.precision] = r"\beta"

        def tex(e: sp.Expr) -> str:
            return sp.latex(e, symbol_names=symbol_names(e) | names)
        rows = [f"{tex(u)} &= {tex(e)}" for u, e in m.prediction_exprs.items()]
        rows += [f"{tex(u)} &= {tex(e)}" for u, e in m.error_exprs.items()]
        rows.append(f"F &= {tex(self.in_error_units(m.energy))}")
        return rows


    def latex(self) -> str:
        """Two LaTeX ``aligned`` blocks: the declaration (:meth:`latex_declaration`)
        and the derived rates (:meth:`latex_rates`)."""
        blocks = [self.latex_declaration(), self.latex_rates()]
        return "\n".join("\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
                         for rows in blocks)


def _dot_name(s: sp.Symbol) -> str:
    head, tail = str(s)[0], str(s)[1:].replace("_", ",")
    return rf"\dot{{{head}}}_{{{tail}}}"


def derive_predictive_coding(model: PredictiveCoding) -> PredictiveCodingSystem:
    """Derive the inference dynamics ``ẋ = −∂F/∂x`` and the weight update
    ``Ẇ = −∂F/∂W`` of a declared predictive coding network (SymPy, by the chain rule
    through the prediction units).

    Parameters
    ----------
    model
        The declaration.

    Returns
    -------
    PredictiveCodingSystem

    Raises
    ------
    DeclarationError
        If ``model`` is not a :class:`PredictiveCoding`.
    """
    if not isinstance(model, PredictiveCoding):
        raise DeclarationError(f"derive_predictive_coding takes a PredictiveCoding, got "
                               f"{type(model).__name__}",
                               fix="declare it with PredictiveCoding(network)")
    net = model.network
    F = model.energy
    outs = set(net.outputs)
    units: list[Hashable] = [j for j in net.order if j not in outs]
    xs = [net.x[j] for j in units]
    grad_x = {x: sp.diff(F, x) for x in xs}
    grad_mu = {mu: sp.factor_terms(sp.diff(F, mu)) for mu in model.predictions.values()}
    dmu_dx: dict[tuple[sp.Symbol, sp.Symbol], sp.Expr] = {}
    dmu_dw: dict[tuple[sp.Symbol, sp.Symbol], sp.Expr] = {}
    slopes: dict[object, sp.Expr] = {}         # σ'(z), once per activation
    for i in net.computing:
        mu = model.predictions[i]
        act = net.activation_of(i)
        if act not in slopes:
            slopes[act] = sp.diff(act(_Z), _Z)
        # chain rule through the net input a_i = Σ_k w_ik x_k: ∂μ_i/∂q = σ'(a_i) ∂a_i/∂q,
        # each factor by sympy.diff (of the one term of a_i that holds q: differentiating
        # the whole sum for each of its symbols is quadratic in the fan-in)
        slope = slopes[act].xreplace({_Z: net.net_input(i)})
        for k in net.graph.predecessors(i):
            term = net.w[i, k] * net.x[k]
            dmu_dx[mu, net.x[k]] = slope * sp.diff(term, net.x[k])
            dmu_dw[mu, net.w[i, k]] = slope * sp.diff(term, net.w[i, k])
    terms: dict[sp.Symbol, list[sp.Expr]] = {x: [grad_x[x]] for x in xs}
    for (mu, xk), d in dmu_dx.items():
        if xk in terms:
            terms[xk].append(grad_mu[mu] * d)
    value_rates = {x: -sp.Add(*terms[x]) for x in xs}
    weight_rates = {}
    for (i, _k), w in net.w.items():
        mu = model.predictions[i]
        weight_rates[w] = -grad_mu[mu] * dmu_dw[mu, w]
    return PredictiveCodingSystem(model, grad_x, grad_mu, dmu_dx, dmu_dw, value_rates,
                                  weight_rates)
