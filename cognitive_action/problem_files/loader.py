"""Problem files: TOML declarations of learning laws and mechanical systems.

A problem file is data. It is read with :mod:`tomllib`, checked against the schema of
:mod:`cognitive_action.problem_files.schema` (every unknown key, wrong type or missing
field is reported with the file, the field and the fix; the reference page
``docs/problem_files.md`` is generated from that schema), and its expression strings
are parsed by the whitelisting parser of
:mod:`cognitive_action.problem_files.expressions` — nothing in a file is executed.

Two kinds of problem exist. A **network** problem (eq. 4-7, 18-19)::

    name = "xor"
    description = "The XOR network of Section 3"
    parameters = { m_x = 0.01, m_W = 1.0, theta = 10.0 }   # names and values

    [network]
    edges = [[1, 3], [2, 3], [1, 4], [2, 4], [3, 5], [4, 5]]   # or layers = [2, 2, 1]
    inputs = [1, 2]
    activation = "tanh"          # tanh, logistic, identity, softplus
    # activations = { 5 = "identity" }  # per neuron (edges), or one name per non-input
    #                            # layer with layers: activations = ["tanh", "identity"]
    # output_activation = "identity"    # the output neurons' activation
    # bias = true                # a constant unit b (x_b = 1) with an arc to every
    #                            # non-input neuron: biases are the weights w<j>_b
    # speed = "c"                # the non-holonomic neuron (18)

    [action]
    mass_x = "m_x"
    mass_W = "m_W"
    weight = "exp(theta*t)"
    # loss = "softmax_cross_entropy"  # or "squared" (the default), or an expression
    # loss = "(x5 - y5)**2/2"    # default: squared error of the outputs; it may name
    #                            # the weights w<target>_<source>, e.g. "+ 0.01*w5_3**2"

    [[constraints]]              # optional: constraints added to eq. (4), e.g. a tie
    # name = "tie"
    # expr = "w3_1 - w4_2"

    [inputs]                     # by input neuron; default: signals e<i>
    1 = "1"
    2 = "0"
    [targets]                    # by output neuron; default: signals y<o>
    5 = "1"

    [data]                       # optional: train on a data set (inputs/targets unset)
    source = "digits"            # a name among DATA_SOURCES, never a path or module
    split = 0.2                  # fraction held out for testing, by seed
    seed = 0
    [train]                      # defaults of `cognitive-action train`
    epochs = 3
    learning_rate = 0.05
    # mode = "limit"             # or "dynamics", "diffusion"; their tau, theta
    #                            # (default: the parameter's value), speed (c), and
    #                            # steps (the dynamics' integrator steps per sample)

A **mechanical** (general) problem::

    name = "pendulum"
    coordinates = ["q1", "q2"]
    parameters = { m = 1.0, g = 9.81, L = 1.0 }
    [action]
    masses = "m"                 # or a list, or mass_matrix = [[...], [...]]
    lagrangian = "m*g*q1"        # F(t, q, q_dot, q_ddot)
    [[constraints]]
    name = "rod"
    expr = "q1**2 + q2**2 - L**2"

An **energy** problem (equilibrium propagation, Scellier & Bengio 2017: a Hopfield-like
energy with one weight per undirected pair, :func:`cognitive_action.declare.energy.hopfield`)::

    name = "equilibrium_propagation"
    kind = "energy"
    [energy]
    layers = [2, 4, 1]           # or edges = [[1, 3], ...] with inputs and outputs
    activation = "logistic"      # a bounded one keeps E bounded below
    bias = true
    [inputs]                     # numbers: the clamped inputs e<i>
    1 = "0.5"
    [targets]                    # numbers: the targets y<o> of the cost ½Σ(x_o - y_o)²
    7 = "0.8"

Optional tables for all: ``[initial]`` (``values = {...}``, ``seed``, ``weight_scale``,
``init``: the name of a weight initialiser in
:mod:`cognitive_action.declare.initializers`, default ``"normal_fan_in"``),
``[simulate]`` (``t_end``, ``points``, ``method``, ``rtol``, ``atol``) and
``[verify]`` (``rtol``, ``fd_rtol``, ``gamma``, ``seed``; ``skip``: checks not to run;
``law``: the name of a registered learning law the numeric backprop check judges,
``"derived"`` (default), ``"sign_flipped"``, ``"feedback_alignment"``,
``"direct_feedback_alignment"`` or one registered with
:func:`cognitive_action.verify.laws.register_law` or an entry point (never a module
path: nothing in a file is imported; the name is looked up when the file is verified);
``formulas``: named tables ``unknown = "expression"`` compared with the derived reduced
system, e.g. the printed eq. (15); ``expect_fail``: names of checks that document a
known failure, such as the anti-stable multipliers of
eq. 20; ``symbolic``: run the symbolic checks at any size (true) or none (false);
``budget``: seconds each symbolic check may take), kept as settings for the commands
that use them, and
``nonholonomic = "vakonomic" | "dalembert"``. A ``[sweep]`` table (and its
``[sweep.convergence]``) has its keys checked here and is kept as written for
:mod:`cognitive_action.sweeps.section`, which checks the values (docs/sweeps.md).

Examples
--------
>>> spec = load_problem("xor")
>>> spec.problem
Problem('xor': 11 coordinates, 5 holonomic and 0 non-holonomic constraints)
>>> spec.values["m_W"]
1.0
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import sympy as sp

from cognitive_action.declare.activations import ACTIVATIONS
from cognitive_action.declare.energy import EnergyModel, hopfield
from cognitive_action.declare.initializers import available_initializers
from cognitive_action.declare.network import LOSSES, Network, layered
from cognitive_action.declare.problem import Action, Constraint, Problem
from cognitive_action.declare.roles import RoleKind
from cognitive_action.declare.symbols import dot, symbol, t
from cognitive_action.errors import CognitiveActionError, ProblemFileError
from cognitive_action.problem_files.expressions import (
    parse_expression,
    parse_number,
    validate_name,
)
from cognitive_action.problem_files.schema import KINDS, allowed_keys, initial_value_names

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Limits", "ProblemSpec", "load_problem", "parse_problem", "shipped_problems",
           "problems_dir"]

# the allowed keys come from the schema, which the reference page is generated from
_TOP = allowed_keys("")
_NETWORK = allowed_keys("network")
_ENERGY = allowed_keys("energy")
_ACTION_NET = allowed_keys("action", "network")
_ACTION_MECH = allowed_keys("action", "mechanical")
_CONSTRAINT = allowed_keys("constraints")
#: A problem's name: it becomes part of output file names, so no path separators.
_PROBLEM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_SIMULATE = allowed_keys("simulate")
_VERIFY = allowed_keys("verify")
_DATA = allowed_keys("data")
_TRAIN = allowed_keys("train")
#: Training modes a ``[train] mode`` may name (``learn.train.MODES``).
TRAIN_MODES = ("limit", "dynamics", "diffusion")
#: Data sources a ``[data] source`` may name (never a module path or a file).
DATA_SOURCES = ("digits",)
#: The shape of each data source: input features and classes (checked against the
#: network when the file is read, before anything is loaded or trained).
DATA_SHAPES = {"digits": (64, 10)}
#: A law name: letters, digits, ``_``, ``-`` (no ``.`` or ``:``, so never a module path).
LAW_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
MAX_FILE_BYTES = 1_000_000
#: Multiplier variants a ``[simulate] variant`` may name (``workflow.VARIANTS``).
SIMULATE_VARIANTS = ("forward", "relaxation", "adjoint")


@dataclass(frozen=True)
class Limits:
    """The size budget of a problem file: what a file may ask the program to build.

    A problem file is untrusted: a 39-byte ``layers = [10000, 10000]`` would otherwise
    declare 10⁸ weights and take gigabytes. The budget is the caller's, never the
    file's: raise it with the CLI's ``--max-neurons``, ``--max-weights`` and
    ``--max-points`` (options of ``cognitive-action`` itself, before the command) or
    ``load_problem(..., limits=Limits(...))``. The defaults admit every shipped problem
    and a dense 200-neuron net (40,000 weights, ``benchmarks/bench_derive.py``).

    Attributes
    ----------
    max_neurons
        Most neurons of a network (inputs and the bias unit included).
    max_weights
        Most weights (arcs) of a network.
    max_points
        Most output points of a simulation (``[simulate] points``, ``--points``).
    max_coordinates
        Most coordinates, and most constraints, of a mechanical problem (derived by the
        generic route, whose cost grows faster than linearly with both).

    Examples
    --------
    >>> Limits().max_weights
    50000
    >>> Limits(max_weights=300_000).max_weights
    300000
    """

    max_neurons: int = 1_000
    max_weights: int = 50_000
    max_points: int = 1_000_000
    max_coordinates: int = 500

    def __post_init__(self) -> None:
        for name in ("max_neurons", "max_weights", "max_points", "max_coordinates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ProblemFileError(f"Limits.{name} = {value!r}: must be a positive "
                                       "integer", fix=f"e.g. Limits({name}=100000)")

    def check_network(self, neurons: int, weights: int, *, path: str | None = None,
                      field: str | None = None) -> None:
        """Refuse a network over the budget, before it is built.

        Raises
        ------
        ProblemFileError
            Naming the setting to raise.
        """
        over = [(count, limit, what, option) for count, limit, what, option in (
            (neurons, self.max_neurons, "neurons", "max-neurons"),
            (weights, self.max_weights, "weights", "max-weights")) if count > limit]
        if over:
            raise ProblemFileError(
                "the network has " + " and ".join(
                    f"{count:,} {what} (limit {limit:,})" for count, limit, what, _ in over)
                + ", over the limit",
                fix="if you mean it, raise the limit: cognitive-action " + " ".join(
                    f"--{option} {count}" for count, _, _, option in over) + " COMMAND ..., "
                "or load_problem(..., limits=Limits(" + ", ".join(
                    f"{option.replace('-', '_')}={count}" for count, _, _, option in over)
                + "))", path=path, field=field)

    def check_count(self, count: int, what: str, *, path: str | None = None,
                    field: str | None = None) -> None:
        """Refuse more than :attr:`max_coordinates` coordinates or constraints."""
        if count > self.max_coordinates:
            raise ProblemFileError(
                f"{count:,} {what}, over the limit of {self.max_coordinates:,}",
                fix=f"if you mean it, raise the limit: cognitive-action --max-coordinates "
                f"{count} COMMAND ..., or load_problem(..., limits=Limits(max_coordinates="
                f"{count}))", path=path, field=field)

    def check_points(self, points: int, *, path: str | None = None,
                     field: str | None = None) -> None:
        """Refuse more output points than :attr:`max_points`."""
        if points > self.max_points:
            raise ProblemFileError(
                f"{points:,} output points, over the limit of {self.max_points:,}",
                fix=f"ask for fewer points, or raise the limit: cognitive-action "
                f"--max-points {points} simulate ...", path=path, field=field)


@dataclass
class ProblemSpec:
    """A loaded problem file.

    Attributes
    ----------
    name, description, path
        Identification.
    problem
        The declared :class:`~cognitive_action.declare.problem.Problem` (an
        :class:`~cognitive_action.declare.energy.EnergyModel` for ``kind = "energy"``).
    values
        Numeric values of the parameters, by name (and of the inputs ``e<i>`` and
        targets ``y<o>`` of an energy problem).
    network
        The :class:`~cognitive_action.declare.network.Network` for network problems.
    initial, simulate, verify
        Settings tables as given (validated keys).
    sweep
        The ``[sweep]`` table as written: :mod:`cognitive_action.sweeps.section` (a
        higher layer) checks it and builds the sweep.
    limits
        The size budget the file was loaded under (:class:`Limits`); commands that
        build more from it (``simulate --points``) keep to it too.
    """

    name: str
    description: str
    path: str
    problem: Problem | EnergyModel
    values: dict[str, float]
    network: Network | None = None
    initial: dict[str, Any] = field(default_factory=dict)
    simulate: dict[str, Any] = field(default_factory=dict)
    verify: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, Any] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)


def problems_dir() -> Path:
    """The folder of shipped problems (``$COGNITIVE_ACTION_PROBLEMS`` overrides it)."""
    env = os.environ.get("COGNITIVE_ACTION_PROBLEMS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "problems"


def shipped_problems() -> dict[str, Path]:
    """Shipped problem names and their files."""
    d = problems_dir()
    return {p.stem: p for p in sorted(d.glob("*.toml"))} if d.is_dir() else {}


def load_problem(source: str | os.PathLike[str], *, limits: Limits | None = None
                 ) -> ProblemSpec:
    """Load a problem file by path or by shipped name (``"xor"``).

    Parameters
    ----------
    source
        A path or a shipped problem's name.
    limits
        The size budget (default :class:`Limits`).

    Raises
    ------
    ProblemFileError
        If the file is missing, unreadable, too large, not valid TOML, fails the schema
        or asks for more than ``limits``.
    """
    path = Path(source)
    if not path.suffix and not path.is_file():  # a folder named "xor" is not the file
        shipped = shipped_problems()
        if str(source) not in shipped and path.exists():  # a folder, a device: not a file
            raise ProblemFileError(f"no problem named {str(source)!r}, and {str(path)!r} is "
                                   "not a regular file",
                                   fix="give the path of a .toml problem file or one of: "
                                   f"{', '.join(shipped) or '(none shipped)'}",
                                   path=str(path))
        if str(source) not in shipped:
            raise ProblemFileError(
                f"no problem named {str(source)!r}",
                fix=f"use a file path or one of: {', '.join(shipped) or '(none shipped)'}")
        path = shipped[str(source)]
    if not path.exists():
        raise ProblemFileError(f"file {str(path)!r} does not exist",
                               fix="check the path", path=str(path))
    if not path.is_file():
        raise ProblemFileError(f"{str(path)!r} is not a regular file",
                               fix="give the path of a .toml problem file", path=str(path))
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ProblemFileError(f"file is larger than {MAX_FILE_BYTES} bytes",
                                   fix="problem files are small declarations",
                                   path=str(path))
        with open(path, "rb") as fh:  # read at most the budget, whatever stat said
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ProblemFileError(f"cannot read the file ({exc.strerror or exc})",
                               fix="check that the file exists and you may read it",
                               path=str(path)) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise ProblemFileError(f"file is larger than {MAX_FILE_BYTES} bytes",
                               fix="problem files are small declarations", path=str(path))
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProblemFileError("file is not UTF-8 text", fix="save it as UTF-8",
                               path=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProblemFileError(f"not valid TOML: {exc}", fix="correct the TOML syntax",
                               path=str(path)) from exc
    return parse_problem(data, path=str(path), default_name=path.stem, limits=limits)


def parse_problem(data: Mapping[str, Any], *, path: str = "<problem>",
                  default_name: str = "problem", limits: Limits | None = None
                  ) -> ProblemSpec:
    """Build a :class:`ProblemSpec` from parsed TOML data (see the module docstring);
    ``limits`` is the size budget (default :class:`Limits`)."""
    return _Reader(data, path, limits or Limits()).read(default_name)


class _Reader:
    def __init__(self, data: Mapping[str, Any], path: str, limits: Limits) -> None:
        self.data = data
        self.path = path
        self.limits = limits

    # -- schema helpers ------------------------------------------------------------------
    def fail(self, field_: str, message: str, fix: str) -> None:
        raise ProblemFileError(message, fix=fix, path=self.path, field=field_)

    def table(self, data: Any, key: str, allowed: set[str], required: bool = False
              ) -> dict[str, Any]:
        if data is None:
            if required:
                self.fail(key, "missing table", f"add a [{key}] table")
            return {}
        if not isinstance(data, Mapping):
            self.fail(key, f"must be a table, got {type(data).__name__}",
                      f"write it as [{key}] with key = value lines")
        unknown = sorted(set(data) - allowed) if allowed else []
        if unknown:
            self.fail(f"{key}.{unknown[0]}", "unknown key",
                      f"allowed keys are {', '.join(sorted(allowed))}")
        return dict(data)

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            self.fail(where, f"must be a string, got {type(value).__name__}",
                      "quote it")
        return value

    def expr(self, value: Any, where: str, names: Mapping[str, Any]) -> sp.Expr:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(where, f"must be an expression string or a number, got "
                      f"{type(value).__name__}", 'write it as a string, e.g. "m*g*q1"')
        return parse_expression(value, names, where=f"{self.path}: {where}")

    # -- reading -------------------------------------------------------------------------
    def read(self, default_name: str) -> ProblemSpec:
        d = self.data
        unknown = sorted(set(d) - _TOP)
        if unknown:
            self.fail(unknown[0], "unknown top-level key",
                      f"allowed keys are {', '.join(sorted(_TOP))}")
        name = self.string(d.get("name", default_name), "name")
        if not _PROBLEM_NAME.match(name):  # it names the output files: never a path
            shown = repr(name) if len(name) <= 80 else f"{name[:60]!r}… ({len(name)} characters)"
            self.fail("name", f"{shown} is not a problem name (it names the output files): "
                      "1-64 letters, digits, '_', '-' or '.', starting with a letter or "
                      "digit", 'e.g. name = "my_law"')
        description = self.string(d.get("description", ""), "description")
        params = self.table(d.get("parameters"), "parameters", set())
        values: dict[str, float] = {}
        self.names: dict[str, Any] = {"t": t}
        self.param_symbols = []
        for k, v in params.items():
            k = validate_name(k, f"{self.path}: parameters")
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                self.fail(f"parameters.{k}", f"must be a number, got {type(v).__name__}",
                          "give the parameter's numeric value")
            num = parse_number(v, f"{self.path}: parameters.{k}")
            values[k] = float(num)
            s = sp.Symbol(k, real=True)
            self.names[k] = s
            self.param_symbols.append(s)
        kind = d.get("kind", "network" if "network" in d else
                     "energy" if "energy" in d else "mechanical")
        if kind not in KINDS:
            self.fail("kind", f"unknown kind {kind!r}",
                      f"use one of {', '.join(map(repr, KINDS))}")
        for key in sorted(set(d) - allowed_keys("", kind)):  # e.g. [inputs] in mechanics
            self.fail(key, f"unknown key in {'an' if kind == 'energy' else 'a'} {kind} problem",
                      f"allowed keys are {', '.join(sorted(allowed_keys('', kind)))}")
        nonhol = d.get("nonholonomic", "vakonomic")
        if nonhol not in ("vakonomic", "dalembert"):
            self.fail("nonholonomic", f"unknown rule {nonhol!r}",
                      "use 'vakonomic' (the paper) or 'dalembert' (classical mechanics)")
        try:
            if kind == "network":
                problem, net = self.network_problem(name)
            elif kind == "energy":
                problem, net = self.energy_problem(name, values), None
            else:
                problem, net = self.mechanical_problem(name, nonhol), None
        except ProblemFileError:
            raise
        except CognitiveActionError as exc:
            raise ProblemFileError(exc.message, fix=exc.fix, path=self.path) from exc
        return ProblemSpec(
            name=name, description=description, path=self.path, problem=problem,
            values=values, network=net,
            initial=self.initial_settings(d.get("initial"), problem),
            simulate=self.simulate_settings(d.get("simulate")),
            verify=self.verify_settings(d.get("verify"), problem),
            data=self.data_settings(d.get("data"), net),
            train=self.train_settings(d.get("train"), "data" in d),
            sweep=self.sweep_settings(d.get("sweep"), kind),
            limits=self.limits)

    def _positive(self, v: Any, where: str, example: str) -> float:
        """A finite number > 0 (not a string, boolean, nan or inf)."""
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                math.isfinite(float(v)) and float(v) > 0):
            self.fail(where, f"must be a positive finite number, got {v!r}", f"e.g. {example}")
        return float(v)

    def simulate_settings(self, data: Any) -> dict[str, Any]:
        """The ``[simulate]`` table: ``t_end`` and the tolerances positive finite numbers,
        ``points`` an integer in ``[2, limits.max_points]``, ``method`` a string (its
        name is checked where the solvers are known), ``variant`` a known variant."""
        v = self.table(data, "simulate", _SIMULATE)
        for key, example in (("t_end", "t_end = 5.0"), ("rtol", "rtol = 1e-8"),
                             ("atol", "atol = 1e-10")):
            if key in v:
                v[key] = self._positive(v[key], f"simulate.{key}", example)
        if "points" in v:
            self._integer(v["points"], "simulate.points", 2, "points = 200")
            self.limits.check_points(v["points"], path=self.path, field="simulate.points")
        if "method" in v and not isinstance(v["method"], str):
            self.fail("simulate.method", f"must be a solver name, got {v['method']!r}",
                      'e.g. method = "cvodes"')
        if "variant" in v and v["variant"] not in SIMULATE_VARIANTS:
            self.fail("simulate.variant", f"unknown variant {v['variant']!r}",
                      f"use {', '.join(repr(x) for x in SIMULATE_VARIANTS)}")
        return v

    def initial_values(self, data: Any, problem: Problem | EnergyModel) -> dict[str, float]:
        """``[initial] values``: a table of the problem's states
        (:func:`~.schema.initial_value_names`: coordinates, velocities ``<q>_dot``,
        constant signals, multiplier states of eq. 20) and parameters (an energy
        problem: its inputs, targets and parameters), each a finite real constant (a
        number or an expression of numbers)."""
        if not isinstance(data, Mapping):
            self.fail("initial.values", f"must be a table of name = value, got {data!r}",
                      'e.g. values = { x3 = 0.5, w3_1 = "pi/4" }')
        if isinstance(problem, EnergyModel):
            known = {str(s) for s in (*problem.inputs, *problem.targets,
                                      *problem.parameters)}
        else:
            known = initial_value_names(problem) | {str(p) for p in problem.parameters}
        listed = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "")
        out = {}
        for name, value in data.items():
            where = f"initial.values.{name}"
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=3)
                self.fail(where, f"{name!r} is not a coordinate, velocity, multiplier "
                          "state or parameter of this problem",
                          ("did you mean " + " or ".join(map(repr, close)) + "? " if close
                           else "") + f"use one of {listed}")
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                self.fail(where, f"must be a number, got {value!r}", f"e.g. {name} = 0.5")
            out[name] = float(parse_number(value, f"{self.path}: {where}"))
        return out

    def sweep_settings(self, data: Any, kind: str) -> dict[str, Any]:
        """The ``[sweep]`` table: its keys and those of ``[sweep.convergence]`` checked
        here, as every table's; :mod:`cognitive_action.sweeps.section` (a higher layer)
        checks the values and builds the sweep."""
        v = self.table(data, "sweep", allowed_keys("sweep", kind))
        if "convergence" in v:
            self.table(v["convergence"], "sweep.convergence",
                       allowed_keys("sweep.convergence", kind))
        return v

    def _integer(self, v: Any, where: str, low: int, example: str) -> None:
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            self.fail(where, f"must be an integer >= {low}, got {v!r}", f"e.g. {example}")

    def data_settings(self, data: Any, net: Network | None) -> dict[str, Any]:
        """The ``[data]`` table: ``source`` one of :data:`DATA_SOURCES` (a name, never a
        path or module), ``split`` in (0, 1), ``seed`` and ``limit`` integers."""
        if data is None:
            return {}
        v = self.table(data, "data", _DATA)
        if net is None:
            self.fail("data", "a [data] table needs a [network]",
                      "declare the network to train, or remove [data]")
        if "source" not in v:
            self.fail("data.source", "missing", f"add source = \"{DATA_SOURCES[0]}\"")
        if v["source"] not in DATA_SOURCES:
            self.fail("data.source", f"unknown data source {v['source']!r}",
                      f"use one of {', '.join(DATA_SOURCES)}")
        n_in, n_cls = DATA_SHAPES[v["source"]]
        has_in, has_out = len(net.input_signals()), len(net.outputs)
        if (has_in, has_out) != (n_in, n_cls):
            self.fail("data.source", f"{v['source']!r} has {n_in} input features and "
                      f"{n_cls} classes; the network has {has_in} data inputs and "
                      f"{has_out} outputs", f"declare the network with {n_in} inputs and "
                      f"{n_cls} outputs, e.g. layers = [{n_in}, 32, {n_cls}]")
        split = v.setdefault("split", 0.2)
        if isinstance(split, bool) or not isinstance(split, (int, float)) or not \
                0 < float(split) < 1:
            self.fail("data.split", f"must be a number between 0 and 1, got {split!r}",
                      "e.g. split = 0.2 (a fifth held out for testing)")
        v["split"] = float(split)
        self._integer(v.setdefault("seed", 0), "data.seed", 0, "seed = 0")
        if "limit" in v:
            self._integer(v["limit"], "data.limit", 2, "limit = 300")
        return v

    def train_settings(self, data: Any, has_data: bool) -> dict[str, Any]:
        """The ``[train]`` table: defaults of ``cognitive-action train``."""
        v = self.table(data, "train", _TRAIN)
        if v and not has_data:
            self.fail("train", "a [train] table needs a [data] table",
                      "add [data] with source = ...")
        for k, low, ex in (("epochs", 0, "epochs = 3"), ("seed", 0, "seed = 0"),
                           ("quick_epochs", 0, "quick_epochs = 1"),
                           ("quick_samples", 2, "quick_samples = 300")):
            if k in v:
                self._integer(v[k], f"train.{k}", low, ex)
        for k, ex in (("learning_rate", "learning_rate = 0.05"), ("tau", "tau = 1.0"),
                      ("theta", "theta = 50.0"), ("speed", "speed = 200.0")):
            if k in v:
                x = v[k]
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not \
                        0 < float(x) < float("inf"):
                    self.fail(f"train.{k}", f"must be a positive number, got {x!r}",
                              f"e.g. {ex}")
        if "steps" in v:
            self._integer(v["steps"], "train.steps", 1, "steps = 1")
        if "mode" in v and v["mode"] not in TRAIN_MODES:
            self.fail("train.mode", f"unknown training mode {v['mode']!r}",
                      f"use one of {', '.join(TRAIN_MODES)}")
        return v

    def initial_settings(self, data: Any, problem: Problem | EnergyModel) -> dict[str, Any]:
        """The ``[initial]`` table, validated: ``values`` (:meth:`initial_values`),
        ``seed`` a non-negative integer, ``weight_scale`` a number >= 0, ``init`` a
        registered weight initialiser."""
        energy = isinstance(problem, EnergyModel)
        kind = ("energy" if energy else
                "network" if problem.network is not None else "mechanical")
        v = self.table(data, "initial", allowed_keys("initial", kind))
        if "values" in v:
            v["values"] = self.initial_values(v["values"], problem)
        if "seed" in v and (isinstance(v["seed"], bool) or not isinstance(v["seed"], int)
                            or v["seed"] < 0):
            self.fail("initial.seed", f"must be a non-negative integer, got {v['seed']!r}",
                      "e.g. seed = 0")
        if "weight_scale" in v:
            x = v["weight_scale"]
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not (
                    0 <= float(x) < float("inf")):
                self.fail("initial.weight_scale", f"must be a number >= 0, got {x!r}",
                          "e.g. weight_scale = 1.0")
        if "init" in v:
            known = available_initializers()
            if not isinstance(v["init"], str) or v["init"] not in known:
                self.fail("initial.init", f"unknown weight initialiser {v['init']!r}",
                          f"use one of {', '.join(known)}")
        return v

    def verify_settings(self, data: Any, problem: Problem) -> dict[str, Any]:
        """The ``[verify]`` table, validated; formulas parsed against the problem's names.

        ``formulas = { eq15 = { w2_1_dot = "..." } }`` compares expressions of the state
        and the multipliers ``delta_<constraint>`` (and ``gamma``, the learning-rate
        constant of eq. 14-17) with the derived reduced system
        (:func:`~cognitive_action.verify.checks.check_formula`).
        """
        v = self.table(data, "verify", _VERIFY)
        if isinstance(problem, EnergyModel):
            for key in ("law", "formulas"):
                if key in v:
                    self.fail(f"verify.{key}", "does not apply to an energy problem",
                              "remove it: an energy problem is judged by the EP checks "
                              "(fixed points, the EP update against recurrent backprop)")
        if "symbolic" in v and not isinstance(v["symbolic"], bool):
            self.fail("verify.symbolic", f"must be true or false, got {v['symbolic']!r}",
                      "e.g. symbolic = true")
        for key in ("rtol", "fd_rtol", "gamma", "drift_tol", "budget"):
            if key in v:
                x = v[key]
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not (
                        0 < float(x) < float("inf")):
                    self.fail(f"verify.{key}", f"must be a positive number, got {x!r}",
                              {"gamma": "e.g. gamma = 1.0", "budget": "e.g. budget = 60"}.get(
                                  key, f"e.g. {key} = 1e-9"))
                v[key] = float(x)
        if "seed" in v and (isinstance(v["seed"], bool) or not isinstance(v["seed"], int)
                            or v["seed"] < 0):
            self.fail("verify.seed", f"must be a non-negative integer, got {v['seed']!r}",
                      "e.g. seed = 0")
        for key in ("skip", "expect_fail"):
            if key in v and (not isinstance(v[key], list)
                             or not all(isinstance(x, str) for x in v[key])):
                self.fail(f"verify.{key}", "must be a list of check names",
                          f'e.g. {key} = ["convergence"]')
        if "law" in v:
            # Only the form is checked here: the registry lives in the verify layer
            # (which this one may not import) and laws registered at run time or by an
            # entry point are known there; verify_spec looks the name up.
            law = v["law"]
            if not isinstance(law, str) or not LAW_NAME.match(law):
                path_like = isinstance(law, str) and any(c in law for c in ".:/")
                self.fail("verify.law", f"{law!r} is not the name of a learning law" + (
                    ": a problem file names a registered law, never a module path to "
                    "import" if path_like else ""),
                    'write a registered name, e.g. law = "feedback_alignment"; register '
                    "your own with cognitive_action.verify.laws.register_law or a "
                    "'cognitive_action.laws' entry point")
        if "formulas" in v:
            v["formulas"] = self.formulas(v["formulas"], problem)
        return v

    def formulas(self, data: Any, problem: Problem) -> dict[str, dict[sp.Symbol, sp.Expr]]:
        if not isinstance(data, Mapping) or not data:
            self.fail("verify.formulas", "must be a table of named formulas",
                      '[verify.formulas.eq15] then w2_1_dot = "..." lines')
        coords = problem.coordinates
        names: dict[str, Any] = dict(self.names)
        for q in coords:
            for k in range(3):
                names[str(dot(q, k))] = dot(q, k)
        for s_ in problem.signals:
            for k in range(3):
                names[str(dot(s_, k))] = dot(s_, k)
        for c in problem.constraints:
            for prefix in ("delta", "lambda", "nu", "mu"):
                names[f"{prefix}_{c.name}"] = symbol(f"{prefix}_{c.name}")
        names.setdefault("gamma", symbol("gamma"))
        out: dict[str, dict[sp.Symbol, sp.Expr]] = {}
        for fname, table in data.items():
            where = f"verify.formulas.{fname}"
            fname = validate_name(fname, f"{self.path}: {where}")
            if not isinstance(table, Mapping) or not table:
                self.fail(where, "must be a table of unknown = expression",
                          'e.g. w2_1_dot = "-(1 - tanh(w2_1*x1)**2)*delta_G2*x1/gamma"')
            rows: dict[sp.Symbol, sp.Expr] = {}
            for unknown, text in table.items():
                if unknown not in names or not isinstance(names[unknown], sp.Symbol):
                    self.fail(f"{where}.{unknown}", f"{unknown!r} is not a name of this problem",
                              "the left side is an unknown of the reduced system, e.g. a "
                              "weight velocity w2_1_dot or a multiplier delta_G2")
                rows[names[unknown]] = self.expr(text, f"{where}.{unknown}", names)
            out[fname] = rows
        return out

    def _node(self, v: Any, where: str) -> int | str:
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            self.fail(where, f"a neuron label must be an integer or a name, got {v!r}",
                      "label neurons 1, 2, ... or with identifiers")
        if isinstance(v, str) and not v.isidentifier():
            self.fail(where, f"neuron label {v!r} is not an identifier",
                      "use integers or identifiers")
        return v

    def _activation(self, act: Any, where: str) -> str:
        if not isinstance(act, str) or act not in ACTIVATIONS:
            self.fail(where, f"unknown activation {act!r}",
                      f"use {', '.join(sorted(ACTIVATIONS))} (or register_activation "
                      "one of your own before loading the file)")
        return act

    def network_problem(self, name: str) -> tuple[Problem, Network]:
        d = self.data
        nt = self.table(d.get("network"), "network", _NETWORK, required=True)
        act = self._activation(nt.get("activation", "tanh"), "network.activation")
        out_act = None
        if "output_activation" in nt:
            out_act = self._activation(nt["output_activation"], "network.output_activation")
        bias = nt.get("bias", False)
        if not isinstance(bias, bool):
            self.fail("network.bias", f"must be true or false, got {bias!r}",
                      "bias = true adds a constant unit b with an arc to every non-input "
                      "neuron")
        per = nt.get("activations")
        speed = None
        if "speed" in nt:
            speed = self.expr(nt["speed"], "network.speed", self.names)
        if ("edges" in nt) == ("layers" in nt):
            self.fail("network", "give exactly one of 'edges' and 'layers'",
                      "layers = [2, 3, 1] for a layered net, or edges = [[1, 3], ...]")
        if "layers" in nt:
            sizes = nt["layers"]
            if not isinstance(sizes, list) or not all(
                    isinstance(s, int) and not isinstance(s, bool) and 0 < s <= 10_000
                    for s in sizes) or len(sizes) < 2:
                self.fail("network.layers", "must be a list of at least two positive "
                          "integers", "e.g. layers = [2, 3, 1]")
            self.limits.check_network(
                sum(sizes) + bool(bias),
                sum(a * b for a, b in zip(sizes, sizes[1:])) + bias * sum(sizes[1:]),
                path=self.path, field="network.layers")
            if per is not None:
                if not isinstance(per, list) or len(per) != len(sizes) - 1:
                    self.fail("network.activations", "with layers, must list one activation "
                              f"per non-input layer ({len(sizes) - 1})",
                              f"e.g. activations = {['tanh'] * (len(sizes) - 2) + ['identity']}"
                              .replace("'", '"'))
                if out_act is not None:
                    self.fail("network.output_activation", "given with activations",
                              "give the output layer's activation as the last entry of "
                              "activations")
                per = [self._activation(a, f"network.activations[{i}]")
                       for i, a in enumerate(per)]
            net = layered(sizes, act, output_activation=out_act, activations=per,
                          bias=bias, speed=speed)
        else:
            edges = nt["edges"]
            if not isinstance(edges, list) or not edges:
                self.fail("network.edges", "must be a non-empty list of [source, target]",
                          "e.g. edges = [[1, 3], [2, 3]]")
            labels = {str(v) for e in edges if isinstance(e, list) for v in e}
            self.limits.check_network(len(labels) + bool(bias), len(edges),
                                      path=self.path, field="network.edges")
            g = nx.DiGraph()
            for i, e in enumerate(edges):
                if not isinstance(e, list) or len(e) != 2:
                    self.fail(f"network.edges[{i}]", f"must be [source, target], got {e!r}",
                              "write each arc as a pair")
                g.add_edge(self._node(e[0], f"network.edges[{i}]"),
                           self._node(e[1], f"network.edges[{i}]"))
            for i, n in enumerate(nt.get("nodes", [])):
                g.add_node(self._node(n, f"network.nodes[{i}]"))
            inputs = nt.get("inputs", [])
            if not isinstance(inputs, list):
                self.fail("network.inputs", "must be a list of neuron labels",
                          "e.g. inputs = [1, 2]")
            outputs = nt.get("outputs")
            in_nodes = [self._node(i, "network.inputs") for i in inputs]
            overrides: dict[Any, str] = {}
            if per is not None:
                if not isinstance(per, dict):
                    self.fail("network.activations", "with edges, must be a table "
                              "{neuron = activation}", 'e.g. activations = { 5 = "identity" }')
                by_label = {str(n): n for n in g.nodes}
                for k, v in per.items():
                    if k not in by_label or by_label[k] in in_nodes:
                        self.fail(f"network.activations.{k}",
                                  f"{k} is not a non-input neuron of the network",
                                  "name neurons that appear in edges and are not inputs")
                    overrides[by_label[k]] = self._activation(v, f"network.activations.{k}")
            if out_act is not None:
                probe = Network(g, in_nodes, act, outputs=outputs)
                overrides = {o: out_act for o in probe.outputs} | overrides
            net = Network(g, in_nodes, act, activations=overrides, bias=bias,
                          speed=speed, outputs=outputs)
        neurons = {str(x): x for x in net.neurons}
        act_tbl = self.table(d.get("action"), "action", _ACTION_NET)
        names = dict(self.names)
        mass_x = self.expr(act_tbl.get("mass_x", 1), "action.mass_x", names)
        mass_W = self.expr(act_tbl.get("mass_W", 1), "action.mass_W", names)
        weight = self.expr(act_tbl.get("weight", 1), "action.weight", names)
        inputs = self._signals(d.get("inputs"), "inputs",
                               tuple(i for i in net.inputs if i != net.bias))
        targets = self._signals(d.get("targets"), "targets", net.outputs)
        loss: sp.Expr | str | None = None
        lraw = act_tbl.get("loss")
        if isinstance(lraw, str) and lraw in LOSSES and lraw not in self.names:
            loss = act_tbl["loss"]
            if not net.outputs:
                self.fail("action.loss", f"the loss {loss!r} needs output neurons",
                          "name them with [network] outputs = [...]")
        elif "loss" in act_tbl:
            # the loss may name the outputs, the targets and the weights (a regulariser)
            lnames = names | neurons | {str(w): w for w in net.weights} | {
                str(s): s for s in net.target_signals().values()}
            if isinstance(lraw, str) and lraw.strip().isidentifier() and \
                    lraw.strip() not in lnames:
                self.fail("action.loss", f"unknown loss {lraw!r}",
                          f"use one of {', '.join(repr(k) for k in LOSSES)}, or an expression "
                          "of the outputs x<o>, targets y<o> and weights")
            loss = self.expr(act_tbl["loss"], "action.loss", lnames)
            loss = loss.xreplace({s: targets[o] for o, s in net.target_signals().items()
                                  if o in targets})
        problem = net.problem(mass_x=mass_x, mass_W=mass_W, weight=weight, loss=loss,
                              inputs=inputs, targets=targets,
                              parameters=self.param_symbols, name=name)
        extra = self.extra_constraints(net, names, {c.name for c in problem.constraints})
        if extra:
            roles = ({net.speed: RoleKind.SPEED} if isinstance(net.speed, sp.Symbol)
                     else {})
            problem = Problem(problem.action, problem.constraints + tuple(extra),
                              signals=problem.signals, parameters=problem.parameters,
                              name=name, network=net, roles=roles)
        return problem, net

    def extra_constraints(self, net: Network, names: Mapping[str, Any], taken: set[str]
                          ) -> list[Constraint]:
        """``[[constraints]]`` of a network file: holonomic constraints added to eq. (4),
        such as tied weights ``w3_1 - w4_2``; they may name the weights, the outputs,
        the parameters and ``t``."""
        cons_raw = self.data.get("constraints", [])
        if not isinstance(cons_raw, list):
            self.fail("constraints", "must be an array of tables",
                      "write each as [[constraints]] with name and expr")
        allowed = dict(names) | {str(x): x for x in net.neurons} | {
            str(w): w for w in net.weights}
        out = []
        for i, c in enumerate(cons_raw):
            c = self.table(c, f"constraints[{i}]", _CONSTRAINT)
            if "expr" not in c:
                self.fail(f"constraints[{i}].expr", "missing", 'add expr = "w3_1 - w4_2"')
            cname = c.get("name", f"C{i + 1}")
            cname = validate_name(cname, f"{self.path}: constraints[{i}].name")
            if cname in taken:
                self.fail(f"constraints[{i}].name", f"the name {cname!r} is taken (the "
                          "network names its neurons' constraints G<label>)",
                          'give the constraint another name, e.g. name = "tie"')
            taken.add(cname)
            out.append(Constraint(self.expr(c["expr"], f"constraints[{i}].expr", allowed),
                                  cname))
        return out

    def _signals(self, data: Any, key: str, allowed: tuple) -> dict:
        tbl = self.table(data, key, set())
        out = {}
        by_label = {str(n): n for n in allowed}
        for k, v in tbl.items():
            if k not in by_label:
                role = "input" if key == "inputs" else "output"
                self.fail(f"{key}.{k}", f"neuron {k} is not an {role} neuron",
                          f"use one of {', '.join(by_label) or '(none)'}")
            out[by_label[k]] = self.expr(v, f"{key}.{k}", self.names)
        return out

    def energy_problem(self, name: str, values: dict[str, float]) -> EnergyModel:
        """``kind = "energy"``: the Hopfield-like energy of ``[energy]``
        (:func:`~cognitive_action.declare.energy.hopfield`); ``[inputs]`` and
        ``[targets]`` give numbers, stored in ``values`` as ``e<i>`` and ``y<o>``."""
        d = self.data
        for key in ("network", "action", "constraints", "coordinates", "signals", "data"):
            if key in d:
                self.fail(key, "does not apply to an energy problem",
                          "an energy problem is declared by [energy], [inputs], [targets]")
        et = self.table(d.get("energy"), "energy", _ENERGY, required=True)
        act = self._activation(et.get("activation", "logistic"), "energy.activation")
        bias = et.get("bias", True)
        if not isinstance(bias, bool):
            self.fail("energy.bias", f"must be true or false, got {bias!r}",
                      "bias = true gives every free unit a bias b<i>")
        if ("edges" in et) == ("layers" in et):
            self.fail("energy", "give exactly one of 'edges' and 'layers'",
                      "layers = [2, 4, 1], or edges = [[1, 3], ...] with inputs and outputs")
        inputs = outputs = None
        if "layers" in et:
            sizes = et["layers"]
            if not isinstance(sizes, list) or len(sizes) < 2 or not all(
                    isinstance(s, int) and not isinstance(s, bool) and 0 < s <= 1000
                    for s in sizes):
                self.fail("energy.layers", "must be a list of at least two positive "
                          "integers", "e.g. layers = [2, 4, 1]")
            structure: Any = sizes
            for key in ("inputs", "outputs"):
                if key in et:
                    self.fail(f"energy.{key}", "given with layers",
                              "with layers the first layer is the input, the last the output")
        else:
            edges = et["edges"]
            if not isinstance(edges, list) or not edges:
                self.fail("energy.edges", "must be a non-empty list of [unit, unit]",
                          "e.g. edges = [[1, 3], [2, 3]]")
            structure = []
            for i, e in enumerate(edges):
                if not isinstance(e, list) or len(e) != 2:
                    self.fail(f"energy.edges[{i}]", f"must be [unit, unit], got {e!r}",
                              "write each undirected edge as a pair")
                structure.append(tuple(self._node(v, f"energy.edges[{i}]") for v in e))
            for key in ("inputs", "outputs"):
                if not isinstance(et.get(key), list) or not et[key]:
                    self.fail(f"energy.{key}", "missing or not a non-empty list of units",
                              f"e.g. {key} = [1]")
            inputs = [self._node(v, "energy.inputs") for v in et["inputs"]]
            outputs = [self._node(v, "energy.outputs") for v in et["outputs"]]
        model = hopfield(structure, inputs, outputs, activation=act, bias=bias, name=name)
        for key, symbols, prefix in (("inputs", model.inputs, "e"),
                                     ("targets", model.targets, "y")):
            labels = {str(s)[len(prefix):]: s for s in symbols}
            tbl = self.table(d.get(key), key, set())
            for k, v in tbl.items():
                if k not in labels:
                    self.fail(f"{key}.{k}", f"unit {k} is not an "
                              f"{'input' if key == 'inputs' else 'output'} unit",
                              f"use one of {', '.join(labels) or '(none)'}")
                num = self.expr(v, f"{key}.{k}", {})
                if not num.is_number or not num.is_real:
                    self.fail(f"{key}.{k}", f"must be a number, got {v!r}",
                              'the clamped inputs and targets are constants, e.g. "0.5"')
                values[str(labels[k])] = float(num)
        return model

    def mechanical_problem(self, name: str, nonhol: str) -> Problem:
        d = self.data
        coords_raw = d.get("coordinates")
        if not isinstance(coords_raw, list) or not coords_raw:
            self.fail("coordinates", "missing or not a non-empty list of names",
                      'e.g. coordinates = ["q1", "q2"]')
        self.limits.check_count(len(coords_raw), "coordinates", path=self.path,
                                field="coordinates")
        coords = []
        for i, c in enumerate(coords_raw):
            c = validate_name(c, f"{self.path}: coordinates[{i}]")
            if c in self.names:
                self.fail(f"coordinates[{i}]", f"{c!r} is also a parameter",
                          "give each name one role")
            coords.append(symbol(c))
        sig_raw = d.get("signals", [])
        if not isinstance(sig_raw, list):
            self.fail("signals", "must be a list of names", 'e.g. signals = ["e1"]')
        sigs = [symbol(validate_name(s, f"{self.path}: signals")) for s in sig_raw]
        config = dict(self.names) | {str(s): s for s in sigs + coords}
        vel = config | {str(dot(q)): dot(q) for q in coords}
        full = vel | {str(dot(q, 2)): dot(q, 2) for q in coords}
        a = self.table(d.get("action"), "action", _ACTION_MECH, required=True)
        weight = self.expr(a.get("weight", 1), "action.weight", self.names)
        lag = self.expr(a.get("lagrangian", 0), "action.lagrangian", full)
        masses: Any = None
        mass_matrix = None
        if "masses" in a:
            m = a["masses"]
            if isinstance(m, list):
                masses = [self.expr(v, f"action.masses[{i}]", config) for i, v in enumerate(m)]
            else:
                masses = self.expr(m, "action.masses", config)
        if "mass_matrix" in a:
            rows = a["mass_matrix"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                self.fail("action.mass_matrix", "must be a list of rows",
                          'e.g. mass_matrix = [["m", 0], [0, "m"]]')
            mass_matrix = [[self.expr(v, f"action.mass_matrix[{i}][{j}]", config)
                            for j, v in enumerate(r)] for i, r in enumerate(rows)]
        cons_raw = d.get("constraints", [])
        if not isinstance(cons_raw, list):
            self.fail("constraints", "must be an array of tables",
                      "write each as [[constraints]] with name and expr")
        self.limits.check_count(len(cons_raw), "constraints", path=self.path,
                                field="constraints")
        cons = []
        for i, c in enumerate(cons_raw):
            c = self.table(c, f"constraints[{i}]", _CONSTRAINT)
            if "expr" not in c:
                self.fail(f"constraints[{i}].expr", "missing", 'add expr = "..."')
            cname = c.get("name")
            if cname is not None:
                cname = validate_name(cname, f"{self.path}: constraints[{i}].name")
            cons.append(Constraint(self.expr(c["expr"], f"constraints[{i}].expr", vel), cname))
        action = Action(coords, masses=masses, mass_matrix=mass_matrix, weight=weight,
                        lagrangian=lag)
        return Problem(action, cons, signals=sigs, parameters=self.param_symbols,
                       nonholonomic=nonhol, name=name)
