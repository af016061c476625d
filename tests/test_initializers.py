"""The weight-initialisation registry (cognitive_action.declare.initializers) against
closed forms: moments of each distribution, reproducibility by seed, the numbers the
CLI drew weight by weight before the registry, and the errors."""

import subprocess
import sys

import numpy as np
import pytest

from cognitive_action.declare.initializers import (
    available_initializers,
    initialize,
    register_initializer,
    unregister_initializer,
)
from cognitive_action.errors import DeclarationError, ProblemFileError

N = 200_000  # draws per moment check


def _check_moments(w: np.ndarray, var: float, fourth: float) -> None:
    """Mean 0 and variance ``var`` within 6 standard errors; ``fourth`` = E[w⁴]
    of the distribution, so that the standard error of the sample variance is
    sqrt((E[w⁴] - var²) / N)."""
    assert abs(w.mean()) < 6 * np.sqrt(var / len(w))
    se_var = np.sqrt((fourth - var**2) / len(w))
    assert abs(w.var() - var) < 6 * se_var, (w.var(), var, se_var)


@pytest.mark.parametrize("fan_in, scale", [(1, 1.0), (4, 2.0), (9, 0.5)])
def test_normal_fan_in_has_variance_scale2_over_fan_in(fan_in, scale):
    w = initialize(np.full(N, fan_in), "normal_fan_in", scale=scale, rng=1)
    var = scale**2 / fan_in
    _check_moments(w, var, 3 * var**2)  # normal: E[w⁴] = 3σ⁴


def test_uniform_fan_in_has_the_same_variance_and_its_bounds():
    fan_in, scale = 3, 2.0
    w = initialize(np.full(N, fan_in), "uniform_fan_in", scale=scale, rng=2)
    a = scale * np.sqrt(3 / fan_in)
    assert np.all(np.abs(w) <= a) and np.abs(w).max() > 0.99 * a
    _check_moments(w, scale**2 / fan_in, a**4 / 5)  # U(-a, a): E[w⁴] = a⁴/5


def test_normal_and_uniform_ignore_the_fan_in():
    fan = np.arange(N) % 7 + 1
    w = initialize(fan, "normal", scale=0.5, rng=3)
    _check_moments(w, 0.25, 3 * 0.25**2)
    u = initialize(fan, "uniform", scale=1.5, rng=4)
    assert np.all(np.abs(u) <= 1.5)
    _check_moments(u, 1.5**2 / 3, 1.5**4 / 5)
    assert not np.any(initialize(fan[:10], "zeros", rng=5))


def test_fan_in_below_one_counts_as_one():
    np.testing.assert_array_equal(initialize([0, 1], rng=7), initialize([1, 1], rng=7))


def test_reproducible_by_seed_and_a_generator_advances():
    fan = [1, 2, 3, 4]
    for name in available_initializers():
        np.testing.assert_array_equal(initialize(fan, name, rng=11),
                                      initialize(fan, name, rng=11))
    assert not np.array_equal(initialize(fan, rng=11), initialize(fan, rng=12))
    gen = np.random.default_rng(11)
    first, second = initialize(fan, rng=gen), initialize(fan, rng=gen)
    np.testing.assert_array_equal(first, initialize(fan, rng=11))
    assert not np.array_equal(first, second)


def test_normal_fan_in_draws_the_numbers_drawn_weight_by_weight():
    """Bit-identical to the loop the CLI and the diffusion model ran before the
    registry: one scalar standard normal per weight, times scale, over sqrt(fan_in)."""
    fan, scale = [1, 3, 3, 2, 5], 0.7
    rng = np.random.default_rng(4)
    loop = [rng.standard_normal() * scale / np.sqrt(max(1, f)) for f in fan]
    assert initialize(fan, "normal_fan_in", scale=scale, rng=4).tolist() == loop
    rng = np.random.default_rng(4)
    loop = [rng.normal(0.0, 0.5) for _ in fan]
    assert initialize(fan, "normal", scale=0.5, rng=4).tolist() == loop


def test_unknown_name_is_a_typed_error_naming_the_known_ones():
    with pytest.raises(DeclarationError) as exc:
        initialize([1], "xavier")
    msg = str(exc.value)
    assert "'xavier'" in msg
    for name in ("normal_fan_in", "normal", "uniform_fan_in", "uniform", "zeros"):
        assert name in msg
    with pytest.raises(DeclarationError, match="scale"):
        initialize([1], scale=-1.0)


def test_register_initializer_hook():
    register_initializer("constant_fan_in",
                         lambda rng, fan_in, scale: scale / fan_in.astype(float))
    try:
        assert "constant_fan_in" in available_initializers()
        np.testing.assert_array_equal(initialize([1, 2, 4], "constant_fan_in", scale=2.0),
                                      [2.0, 1.0, 0.5])
        with pytest.raises(DeclarationError, match="already registered"):
            register_initializer("constant_fan_in", lambda rng, f, s: f)
        register_initializer("constant_fan_in", lambda rng, f, s: np.zeros(1),
                             overwrite=True)
        with pytest.raises(DeclarationError, match="shape"):
            initialize([1, 2], "constant_fan_in")
    finally:
        unregister_initializer("constant_fan_in")
    assert "constant_fan_in" not in available_initializers()
    with pytest.raises(DeclarationError, match="already registered"):
        register_initializer("normal", lambda rng, f, s: f, overwrite=True)
    with pytest.raises(DeclarationError, match="identifier"):
        register_initializer("not a name", lambda rng, f, s: f)


def test_problem_file_init_key(tmp_path):
    from cognitive_action.problem_files.loader import load_problem, problems_dir

    text = (problems_dir() / "xor.toml").read_text(encoding="utf-8")
    assert "weight_scale = 1.0" in text
    good = tmp_path / "xor_uniform.toml"
    good.write_text(text.replace("weight_scale = 1.0",
                                 'weight_scale = 1.0\ninit = "uniform_fan_in"'),
                    encoding="utf-8")
    assert load_problem(good).initial["init"] == "uniform_fan_in"
    bad = tmp_path / "xor_bad.toml"
    bad.write_text(text.replace("weight_scale = 1.0",
                                'weight_scale = 1.0\ninit = "he_normal"'), encoding="utf-8")
    with pytest.raises(ProblemFileError) as exc:
        load_problem(bad)
    assert f"{bad}:initial.init" in str(exc.value)
    assert "normal_fan_in" in str(exc.value) and "Fix:" in str(exc.value)
    neg = tmp_path / "xor_neg.toml"
    neg.write_text(text.replace("weight_scale = 1.0", "weight_scale = -1.0"),
                   encoding="utf-8")
    with pytest.raises(ProblemFileError, match="initial.weight_scale"):
        load_problem(neg)


def test_importing_the_registry_needs_neither_sympy_nor_casadi():
    """The module itself imports only NumPy (the package __init__ files above it are
    another matter, checked where they are made lazy)."""
    import ast
    from pathlib import Path

    import cognitive_action.declare.initializers as mod

    tree = ast.parse(Path(mod.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "collections", "numpy", "cognitive_action"}
    # load errors.py and initializers.py by path under a bare package, so that the
    # package's __init__ (which imports the symbolic API) does not run
    pkg = Path(mod.__file__).parents[1]
    code = f"""
import importlib.util as u, sys, types
root = types.ModuleType("cognitive_action"); root.__path__ = []
sys.modules["cognitive_action"] = root
for name, path in [("cognitive_action.errors", {str(pkg / "errors.py")!r}),
                   ("cognitive_action.declare.initializers", {mod.__file__!r})]:
    spec = u.spec_from_file_location(name, path)
    m = u.module_from_spec(spec); sys.modules[name] = m; spec.loader.exec_module(m)
m.initialize([1, 2], rng=0)
print("sympy" in sys.modules, "casadi" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
