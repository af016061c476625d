"""Predictive coding networks: value units, prediction units, error units and an energy.

Whittington & Bogacz (2017) give every neuron ``j`` of a feedforward network a value
unit ``x_j`` and an error unit ``ε_j = x_j − μ_j``, the difference between the value and
the prediction ``μ_j = σ_j(Σ_k w_jk x_k)`` sent from the layer below. Inference lowers
the energy

    F = Σ_{j hidden} ½ ε_j² + β V(μ_out, y)

over the free value units (the hidden neurons) with the inputs clamped to the data
(``x_i = e_i``) and the outputs clamped to the targets: the output layer's error units
carry the loss of the predictions, ``V(μ_out, y)``, weighted by ``β``, the precision of
the output error (for the squared error ``V = ½ Σ_o (μ_o − y_o)²`` the output error
unit is ``ε_o = y_o − μ_o`` with precision ``β``, as in the paper). Learning lowers
``F`` over the weights at the inference equilibrium.

This module only *declares*: the symbols, the predictions, the error units and the
energy, written with prediction symbols ``μ_j`` so that the derivation
(:mod:`cognitive_action.derive.predictive_coding`) can apply the chain rule through
them — and so that a schedule may hold them fixed (Song et al. 2020's "fixed
prediction"). Nothing of the dynamics or of the weight update is written here.

Examples
--------
>>> from cognitive_action.declare.network import layered
>>> pc = PredictiveCoding(layered([2, 2, 1]))
>>> [str(s) for s in pc.free], [str(s) for s in pc.clamped]
(['x3', 'x4'], ['x1', 'x2'])
>>> pc.prediction_exprs[pc.predictions[3]]
tanh(w3_1*x1 + w3_2*x2)
>>> pc.energy
beta*(mu5 - y5)**2/2 + (-mu3 + x3)**2/2 + (-mu4 + x4)**2/2
>>> PredictiveCoding(layered([2, 1]), precision=-1.0)
Traceback (most recent call last):
...
cognitive_action.errors.DeclarationError: the precision of the output error is -1.0, \
not positive. Fix: give a positive number or a positive symbol (the backprop limit is \
precision -> 0+)
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import sympy as sp

from cognitive_action.declare.network import LOSSES, Network, _label
from cognitive_action.declare.symbols import symbol
from cognitive_action.errors import DeclarationError, GraphError

__all__ = ["PredictiveCoding", "PRECISION"]

#: Default symbol of the precision ``β`` of the output error (``β → 0`` is the backprop
#: limit; large ``β`` clamps the outputs hard, as in Whittington & Bogacz).
PRECISION = sp.Symbol("beta", positive=True)


class PredictiveCoding:
    """A predictive coding network on a feedforward :class:`Network` (Whittington &
    Bogacz 2017).

    Parameters
    ----------
    network
        A feedforward network with instantaneous neurons; its output neurons must have
        no outgoing arcs (they are clamped to the targets).
    precision
        ``β``: the weight of the output error in the energy. A positive symbol (default
        :data:`PRECISION`) or a positive number.
    loss
        ``V`` of the outputs and the targets: ``None`` or ``"squared"`` for
        ``½ Σ_o (x_o − y_o)²``, ``"softmax_cross_entropy"``, or an expression in the
        output neurons' ``x_o``, the target signals ``y_o`` and ``parameters``. It is
        evaluated at the predictions, ``V(μ_out, y)``.
    parameters
        Extra parameter symbols the loss uses.
    name
        A name for reports.

    Attributes
    ----------
    network, precision, loss, name
        As given (``loss`` as an expression in ``x_out``, ``y``).
    free
        The free value units ``x_j`` (hidden neurons), in network order.
    clamped
        The value units of the input neurons (clamped to ``e_i``; the bias unit to 1).
    predictions
        ``{neuron: μ_j}``, the prediction symbol of every non-input neuron.
    prediction_exprs
        ``{μ_j: σ_j(Σ_k w_jk x_k)}``.
    errors
        ``{neuron: ε_j}``, the error unit symbols of every non-input neuron (for
        LaTeX and reports).
    error_exprs
        ``{ε_j: x_j − μ_j}`` for hidden neurons, ``{ε_o: −∂V/∂μ_o}`` for outputs (``y_o −
        μ_o`` for the squared error).
    energy
        ``F = Σ_{hidden} ½ (x_j − μ_j)² + β V(μ_out, y)`` in the value units, the
        prediction symbols and the targets.
    inputs, targets
        ``{neuron: e_i}`` (input signals; ``1`` for the bias unit) and ``{neuron: y_o}``.
    signals, parameters
        The signal symbols (``e``, ``y``) and parameter symbols (``β`` when symbolic,
        the loss's extra parameters).

    Raises
    ------
    GraphError
        A network with cycles, or an output neuron with outgoing arcs.
    DeclarationError
        Not a :class:`Network`, neurons with a speed ``c``, a precision that is not
        positive, an unknown loss name, a loss with symbols other than the outputs,
        targets and declared parameters.
    """

    def __init__(self, network: Network, *, precision: sp.Expr | float = PRECISION,
                 loss: sp.Expr | str | None = None, parameters: Iterable[sp.Symbol] = (),
                 name: str = "predictive_coding") -> None:
        if not isinstance(network, Network):
            raise DeclarationError(f"predictive coding takes a Network, got "
                                   f"{type(network).__name__}",
                                   fix="build one with layered([...]) or Network(graph, "
                                   "inputs)")
        if not network.is_feedforward:
            raise GraphError("predictive coding (Whittington & Bogacz 2017) is declared on "
                             "a feedforward network; this graph has cycles",
                             fix="remove the arcs that close cycles (recurrent nets have "
                             "their own energy-based laws, e.g. equilibrium propagation)")
        if network.speed is not None:
            raise DeclarationError("the network's neurons have a speed c (eq. 18); the value "
                                   "units of predictive coding are relaxed by inference",
                                   fix="declare the network without speed=")
        for o in network.outputs:
            if network.graph.out_degree(o) > 0:
                raise GraphError(f"output neuron {o!r} has outgoing arcs: a clamped output "
                                 "would feed its target to the neurons above it",
                                 fix="make the outputs the sinks of the graph "
                                 "(Network(..., outputs=None))")
        if not network.outputs:
            raise DeclarationError("the network has no output neurons",
                                   fix="name them with Network(..., outputs=[...])")
        self.network, self.name = network, name
        self.precision = self._precision(precision)
        self.inputs: dict[Hashable, sp.Expr] = dict(network.input_signals())
        if network.bias is not None:
            self.inputs[network.bias] = sp.S.One
        self.targets = network.target_signals()
        outs = set(network.outputs)
        self.free = tuple(network.x[j] for j in network.computing if j not in outs)
        self.clamped = tuple(network.x[i] for i in network.inputs)
        self.predictions = {j: symbol(f"mu{_label(j)}") for j in network.computing}
        self.errors = {j: symbol(f"eps{_label(j)}") for j in network.computing}
        taken = set(network.neurons) | set(network.weights) | set(self.targets.values())
        taken |= {s for s in self.inputs.values() if isinstance(s, sp.Symbol)}
        clash = sorted(str(s) for s in (*self.predictions.values(), *self.errors.values())
                       if s in taken)
        if clash:
            raise DeclarationError(f"the unit names {', '.join(clash)} are taken by the "
                                   "network", fix="relabel the neurons (integers work)")
        self.prediction_exprs = {
            self.predictions[j]: network.activation_of(j)(network.net_input(j))
            for j in network.computing}
        extra = tuple(parameters)
        self.loss = self._loss(loss, extra)
        mu_out = {network.x[o]: self.predictions[o] for o in network.outputs}
        v_mu = self.loss.xreplace(mu_out)
        hidden = [j for j in network.computing if j not in outs]
        self.energy = sp.Add(*((network.x[j] - self.predictions[j]) ** 2 / 2
                               for j in hidden)) + self.precision * v_mu
        self.error_exprs = {self.errors[j]: network.x[j] - self.predictions[j]
                            for j in hidden}
        self.error_exprs |= {self.errors[o]: sp.factor_terms(
                                 -sp.diff(v_mu, self.predictions[o]))
                             for o in network.outputs}
        self.signals = tuple(s for s in (*self.inputs.values(), *self.targets.values())
                             if isinstance(s, sp.Symbol))
        params = [self.precision] if isinstance(self.precision, sp.Symbol) else []
        self.parameters = tuple(params + [p for p in extra if p not in params])

    # -- validation ----------------------------------------------------------------------
    @staticmethod
    def _precision(value: Any) -> sp.Expr:
        if isinstance(value, (str, bool)):
            raise DeclarationError(f"the precision must be a number or a SymPy symbol, not "
                                   f"{value!r}", fix="pass e.g. 1e-3 or sympy.Symbol('beta', "
                                   "positive=True)")
        try:
            beta = sp.sympify(value, strict=True)  # safe: non-string input only
        except (sp.SympifyError, TypeError) as exc:
            raise DeclarationError(f"the precision {value!r} is not a number or a symbol",
                                   fix="pass e.g. 1e-3") from exc
        if beta.is_number and not (beta.is_real and beta > 0):
            raise DeclarationError(f"the precision of the output error is {value}, not "
                                   "positive", fix="give a positive number or a positive "
                                   "symbol (the backprop limit is precision -> 0+)")
        if not beta.is_number and not isinstance(beta, sp.Symbol):
            raise DeclarationError(f"the precision {beta} is an expression",
                                   fix="give one positive symbol or a number")
        return beta

    def _loss(self, loss: sp.Expr | str | None, extra: tuple[sp.Symbol, ...]) -> sp.Expr:
        net = self.network
        xs = [net.x[o] for o in net.outputs]
        ys = [self.targets[o] for o in net.outputs]
        if loss is None:
            loss = "squared"
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise DeclarationError(f"unknown loss {loss!r}",
                                       fix=f"use one of {', '.join(LOSSES)}, or an "
                                       "expression of the outputs")
            return LOSSES[loss](xs, ys)
        try:
            expr = sp.sympify(loss, strict=True)  # safe: non-string input only
        except (sp.SympifyError, TypeError) as exc:
            raise DeclarationError(f"the loss {loss!r} is not an expression",
                                   fix="build it from the output and target symbols") from exc
        allowed = set(xs) | set(ys) | set(extra)
        bad = sorted(str(s) for s in expr.free_symbols - allowed)
        if bad:
            raise DeclarationError(f"the loss uses {', '.join(bad)}: predictive coding "
                                   "evaluates it at the output predictions, so it may name "
                                   "only the outputs, their targets and declared parameters",
                                   fix=f"use {', '.join(map(str, xs + ys))} (and pass other "
                                   "symbols in parameters=)")
        return expr

    # -- views ---------------------------------------------------------------------------
    @property
    def weights(self) -> tuple[sp.Symbol, ...]:
        """The weight symbols, in ``network.weights`` order."""
        return self.network.weights

    def closed_energy(self) -> sp.Expr:
        """``F`` with the predictions substituted: a function of the value units, the
        weights, the signals and ``β``."""
        return self.energy.xreplace(self.prediction_exprs)

    def __repr__(self) -> str:
        return (f"PredictiveCoding({self.name!r}: {len(self.free)} free value units, "
                f"{len(self.predictions)} error units, precision {self.precision})")
