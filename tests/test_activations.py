"""The activation registry: one entry per activation, symbolic and NumPy forms agree.

References are independent of the entries' NumPy derivatives: central finite
differences of the NumPy value, and ``sympy.diff`` of the symbolic form evaluated by
``lambdify``; CasADi's translation of the symbolic form is compared with the NumPy value.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import casadi
import numpy as np
import pytest
import sympy as sp

from cognitive_action.compile.translate import to_casadi
from cognitive_action.declare.activations import (
    ACTIVATIONS,
    BUILTIN_ACTIVATIONS,
    Activation,
    NumericActivation,
    activation,
    register_activation,
    unregister_activation,
)
from cognitive_action.declare.network import chain
from cognitive_action.diffusion.functions import get_activation
from cognitive_action.errors import ActivationError
from cognitive_action.problem_files.loader import parse_problem


@pytest.fixture
def user_activations():
    """Two user activations: one with derived NumPy forms, one with hand-written ones."""
    swish = register_activation(Activation("swish_t", lambda a: a / (1 + sp.exp(-a))))
    atan = register_activation(sp.atan, name="atan_t", value=np.arctan,
                               derivative=lambda a: 1.0 / (1.0 + a * a))
    yield swish, atan
    unregister_activation("swish_t")
    unregister_activation("atan_t")


def test_every_registered_derivative_matches_differences_and_sympy(user_activations):
    rng = np.random.default_rng(7)
    a = rng.uniform(-4.0, 4.0, 50)
    z = sp.Symbol("z", real=True)
    assert {"tanh", "logistic", "identity", "softplus", "swish_t", "atan_t"} <= set(ACTIVATIONS)
    for name, act in ACTIVATIONS.items():
        num = act.numeric()
        h = 1e-5
        fd = (num.f(a + h) - num.f(a - h)) / (2 * h)
        sym_d = sp.lambdify([z], sp.diff(act(z), z), "mpmath")
        sym_f = sp.lambdify([z], act(z), "mpmath")
        ref_d = np.array([float(sym_d(float(v))) for v in a])
        ref_f = np.array([float(sym_f(float(v))) for v in a])
        np.testing.assert_allclose(num.df(a), fd, rtol=1e-7, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(num.df(a), ref_d, rtol=1e-12, atol=1e-14, err_msg=name)
        np.testing.assert_allclose(num.f(a), ref_f, rtol=1e-12, atol=1e-14, err_msg=name)
        # the compile stage's translation of the symbolic form gives the same σ
        X = casadi.SX.sym("z")
        fc = casadi.Function("f", [X], [to_casadi(act(z), {"z": X})])
        np.testing.assert_allclose([float(fc(v)) for v in a], ref_f, rtol=1e-12, atol=1e-14,
                                   err_msg=name)


def test_numpy_forms_are_overflow_free_for_builtins():
    a = np.array([-800.0, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for act in BUILTIN_ACTIVATIONS.values():
            num = act.numeric()
            assert np.all(np.isfinite(num.f(a))), act.name
            assert np.all(np.isfinite(num.df(a))), act.name


def test_registered_activation_reaches_networks_files_and_the_numpy_model(user_activations):
    net = chain(3, activation="swish_t")
    x2 = net.x[2]
    assert sp.simplify(net.problem().constraints[1].expr
                       - (x2 - net.activation(net.w[2, 1] * net.x[1]))) == 0
    spec = parse_problem({"network": {"layers": [1, 1], "activation": "atan_t"}})
    assert any(c.expr.has(sp.atan) for c in spec.problem.constraints)
    num = get_activation("atan_t")
    assert isinstance(num, NumericActivation)
    assert num.f is np.arctan


def test_registry_refuses_bad_entries(user_activations):
    with pytest.raises(ActivationError, match="built-in"):
        register_activation(sp.sin, name="tanh")
    with pytest.raises(ActivationError, match="already registered"):
        register_activation(sp.sin, name="swish_t")
    with pytest.raises(ActivationError, match="does not agree"):
        register_activation(sp.sin, name="sin_t", value=np.sin, derivative=np.sin)
    with pytest.raises(ActivationError, match="not C²"):
        register_activation(lambda a: sp.Max(a, 0), name="relu_t")
    with pytest.raises(ActivationError, match="unknown activation 'sin_t'.*swish_t"):
        activation("sin_t")
    with pytest.raises(ActivationError, match="not a registered"):
        unregister_activation("logistic")
    assert "sin_t" not in ACTIVATIONS and "relu_t" not in ACTIVATIONS


def test_replace_swaps_an_entry(user_activations):
    new = register_activation(sp.sin, name="atan_t", replace=True)
    assert activation("atan_t") is new
    assert get_activation("atan_t").f(np.array(0.5)) == pytest.approx(np.sin(0.5))


def test_the_two_activation_classes_have_distinct_names():
    import cognitive_action.diffusion.functions as functions
    assert Activation is not NumericActivation
    with pytest.warns(DeprecationWarning, match="NumericActivation"):
        old = functions.Activation
    assert old is NumericActivation
    assert functions.ACTIVATIONS["tanh"].f is np.tanh


def test_importing_the_numpy_model_loads_neither_sympy_nor_casadi():
    code = ("import sys\nimport cognitive_action.diffusion\n"
            "import cognitive_action.diffusion.functions, cognitive_action.diffusion.nets\n"
            "import cognitive_action.diffusion.sweep\n"
            "import cognitive_action.declare.activations, cognitive_action.verify.metrics\n"
            "bad = sorted(m for m in ('sympy', 'casadi') if m in sys.modules)\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_packages_keep_every_public_name():
    code = ("import sys\nimport cognitive_action as ca, cognitive_action.declare as d, "
            "cognitive_action.verify as v\n"
            "assert 'sympy' not in sys.modules\n"
            "for m in (ca, d, v):\n"
            "    missing = [n for n in m.__all__ if n not in dir(m)]\n"
            "    assert not missing, missing\n"
            "    for n in m.__all__:\n"
            "        getattr(m, n)\n"
            "assert ca.xor().problem() is not None\n"
            "from cognitive_action.derive.limits import backprop\n"
            "assert v.backprop is backprop\n")
    subprocess.run([sys.executable, "-c", code], check=True)
