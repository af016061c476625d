"""The problem-file schema: every section and key a problem file may hold.

The loader (:mod:`cognitive_action.problem_files.loader`) takes its sets of allowed keys
from here, and ``docs/problem_files.md`` is generated from here
(``python docs/generate_reference.py``), so the reference page and what the loader
accepts cannot drift apart (``tests/test_problem_file_reference.py`` probes the loader
with every documented key and with unknown ones).

Each :class:`Key` carries its type, default, allowed values, a description and an
example (a TOML fragment that loads); each :class:`Section` its keys and whether its
key names are free (``parameters``, ``inputs``, ``targets``, ``[initial] values``,
``[verify] formulas``: names of the problem, checked against it).

Examples
--------
>>> sorted(allowed_keys("simulate"))
['atol', 'method', 'points', 'rtol', 't_end', 'variant']
>>> "loss" in allowed_keys("action", kind="network"), "loss" in allowed_keys(
...     "action", kind="mechanical")
(True, False)
>>> section("initial").key("seed").default
'0'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cognitive_action.declare.activations import ACTIVATIONS
from cognitive_action.declare.initializers import DEFAULT_INITIALIZER, available_initializers
from cognitive_action.declare.network import LOSSES
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.roles import generated_names
from cognitive_action.declare.symbols import dot

__all__ = ["KINDS", "SCHEMA", "SIMULATION_METHODS", "VERIFY_CHECKS", "Key", "Section",
           "allowed_keys", "initial_value_names", "markdown", "section"]

#: The kinds of problem file.
KINDS = ("network", "mechanical", "energy")
_LAGRANGIAN = ("network", "mechanical")
#: Integration methods a ``[simulate] method`` may name (those of
#: ``cognitive_action.compile.options.METHODS``; a test keeps the two equal — this layer
#: may not import the compiler).
SIMULATION_METHODS = ("cvodes", "bdf", "adams", "idas", "dopri", "erk", "rk", "collocation")
#: Names of the verifier's checks, for ``[verify] skip`` and ``expect_fail``.
VERIFY_CHECKS = ("rank", "rank.symbolic", "backprop.numeric", "backprop.symbolic",
                 "convergence.mass_ratio", "stability.multipliers", "initial_conditions",
                 "simulated", "alignment.training", "drift")


@dataclass(frozen=True)
class Key:
    """One key of a section.

    Attributes
    ----------
    name
        The key as written in the file.
    type
        Its TOML type in words (``"string"``, ``"integer ≥ 0"``, ``"expression"``, ...).
    description
        What it means (Markdown).
    example
        A TOML fragment that loads, as written under the section's header.
    default
        The value used when the key is absent (``"required"`` if it must be given).
    allowed
        The values it may take, in words; empty when any value of the type goes.
    kinds
        The problem kinds it applies to (:data:`KINDS`).
    """

    name: str
    type: str
    description: str
    example: str
    default: str = "none"
    allowed: str = ""
    kinds: tuple[str, ...] = KINDS


@dataclass(frozen=True)
class Section:
    """A table of a problem file (``""``: the top level).

    Attributes
    ----------
    name
        The table's name (``"initial"``), ``""`` for the top level.
    header
        How the table is written (``"[initial]"``, ``"[[constraints]]"``).
    description
        What it is for.
    keys
        Its fixed keys.
    free_keys
        When the table's keys are names of the problem (parameters, neurons): what they
        may be, in words; ``""`` for a table with fixed keys only.
    kinds
        The problem kinds it applies to.
    """

    name: str
    header: str
    description: str
    keys: tuple[Key, ...] = ()
    free_keys: str = ""
    kinds: tuple[str, ...] = KINDS
    example: str = ""

    def key(self, name: str) -> Key:
        """The key called ``name``.

        Raises
        ------
        KeyError
            No such key in the section.
        """
        for k in self.keys:
            if k.name == name:
                return k
        raise KeyError(f"[{self.name}] has no key {name!r}")


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


_POS = "number > 0"
SCHEMA: tuple[Section, ...] = (
    Section("", "(top level)", "Keys outside any table: what the problem is called and "
            "which symbols it declares.", (
                Key("name", "string",
                    "The problem's name; it names the output files, so 1-64 letters, digits, "
                    "`_`, `-` or `.`, starting with a letter or digit (never a path).",
                    'name = "my_law"', default="the file name without `.toml`"),
                Key("description", "string", "One line shown by `cognitive-action problems`.",
                    'description = "XOR with a tied weight"', default='""'),
                Key("kind", "string", "Which kind of problem the file declares.",
                    'kind = "network"', default='`"network"` if there is a `[network]` '
                    'table, `"energy"` if there is an `[energy]` table, else `"mechanical"`',
                    allowed=_names(KINDS)),
                Key("parameters", "table name = number",
                    "Numeric constants by name; every expression may use them (and `t`). "
                    "See [parameters].", "parameters = { m_x = 0.001, m_W = 1.0, theta = 10.0 }",
                    default="{}"),
                Key("nonholonomic", "string",
                    "The rule for non-holonomic constraints: the paper's variational "
                    "(vakonomic) rule, or Lagrange-d'Alembert (classical mechanics).",
                    'nonholonomic = "dalembert"', default='"vakonomic"',
                    allowed='`"vakonomic"`, `"dalembert"`', kinds=_LAGRANGIAN),
                Key("coordinates", "list of names", "The generalised coordinates `q`; "
                    "their velocities are written `<q>_dot`, accelerations `<q>_ddot`.",
                    'coordinates = ["q1", "q2"]', default="required",
                    kinds=("mechanical",)),
                Key("signals", "list of names", "Time signals the expressions may use "
                    "(given later as constants or functions of `t`).",
                    'signals = ["e1"]', default="[]", kinds=("mechanical",)),
                Key("network", "table", "The network; see [network].",
                    '[network]\nlayers = [2, 2, 1]', default="required for networks",
                    kinds=("network",)),
                Key("action", "table", "The action functional; see [action].",
                    '[action]\nweight = "exp(theta*t)"', default="{} (networks); "
                    "required (mechanical)", kinds=_LAGRANGIAN),
                Key("constraints", "array of tables", "Constraints; see [[constraints]].",
                    '[[constraints]]\nname = "tie"\nexpr = "w3_1 - w4_2"', default="[]",
                    kinds=_LAGRANGIAN),
                Key("energy", "table", "The energy model (equilibrium propagation); see "
                    "[energy].", '[energy]\nlayers = [2, 2, 1]\nactivation = "tanh"',
                    default="required for energy problems", kinds=("energy",)),
                Key("inputs", "table", "Input signals by neuron; see [inputs].",
                    '[inputs]\n1 = "sin(t)"', default="{}", kinds=("network", "energy")),
                Key("targets", "table", "Targets by output neuron; see [targets].",
                    '[targets]\n5 = "1"', default="{}", kinds=("network", "energy")),
                Key("initial", "table", "Initial state; see [initial].",
                    "[initial]\nseed = 1", default="{}"),
                Key("simulate", "table", "Simulation settings; see [simulate].",
                    "[simulate]\nt_end = 2.0", default="{}"),
                Key("verify", "table", "Verifier settings; see [verify].",
                    "[verify]\nrtol = 1e-8", default="{}"),
                Key("data", "table", "A data set to train on; see [data].",
                    '[data]\nsource = "digits"', default="none", kinds=("network",)),
                Key("train", "table", "Training defaults; see [train].",
                    "[data]\nsource = \"digits\"\n[train]\nepochs = 2", default="{}",
                    kinds=("network",)),
                Key("sweep", "table", "A parameter sweep, run by `cognitive-action sweep`: "
                    "axes, task, output grid, scheduler; see [sweep] and "
                    "[Sweeps on Dask](sweeps.md).",
                    '[sweep]\ntask = "simulate"\naxes = { seed = [0, 1] }', default="none",
                    kinds=_LAGRANGIAN),
            )),
    Section("parameters", "parameters = { ... }",
            "Numeric constants. A value is a number or a constant expression string "
            '(`"2*pi"`); it must be real and finite.',
            free_keys="parameter names: identifiers that are not reserved (`t`, function "
            "and constant names) and not coordinates",
            example='parameters = { m_x = 0.001, m_W = 1.0, omega = "2*pi" }'),
    Section("network", "[network]",
            "The directed graph of neurons (eq. 4; eq. 18 with `speed`). Give exactly one "
            "of `edges` and `layers`.", (
                Key("edges", "list of [source, target]",
                    "The arcs; neurons are integers or identifiers. Each arc `k → j` is a "
                    "weight coordinate `w<j>_<k>`.",
                    "edges = [[1, 3], [2, 3], [3, 4]]\ninputs = [1, 2]",
                    default="one of edges/layers required"),
                Key("layers", "list of integers ≥ 1",
                    "A fully connected layered net, neurons numbered 1, 2, ... layer by "
                    "layer; the first entry is the number of inputs.",
                    "layers = [2, 3, 1]", default="one of edges/layers required"),
                Key("nodes", "list of labels", "Extra neurons without arcs (with `edges`).",
                    "edges = [[1, 2]]\ninputs = [1, 3]\nnodes = [3]", default="[]"),
                Key("inputs", "list of labels", "The input neurons (with `edges`; "
                    "`layers` takes the first layer).",
                    "edges = [[1, 2]]\ninputs = [1]", default="[]"),
                Key("outputs", "list of labels",
                    "The output neurons (with `edges`); they carry targets and the loss.",
                    "edges = [[1, 2], [2, 3]]\ninputs = [1]\noutputs = [2, 3]",
                    default="the neurons without outgoing arcs"),
                Key("activation", "string", "The activation σ of every non-input neuron.",
                    'layers = [2, 1]\nactivation = "logistic"', default='"tanh"',
                    allowed=_names(sorted(ACTIVATIONS)) + " (and names registered with "
                    "`register_activation` before loading)"),
                Key("activations", "table or list",
                    "Per-neuron activations: with `edges` a table `{neuron = name}`; with "
                    "`layers` one name per non-input layer.",
                    'layers = [2, 2, 1]\nactivations = ["tanh", "identity"]',
                    default="`activation` everywhere", allowed="as `activation`"),
                Key("output_activation", "string", "The output neurons' activation "
                    "(not with `activations` on a layered net).",
                    'layers = [2, 2, 1]\noutput_activation = "identity"',
                    default="`activation`", allowed="as `activation`"),
                Key("bias", "boolean", "Add a constant unit `b` (`x_b = 1`) with an arc to "
                    "every non-input neuron: the biases are the weights `w<j>_b`.",
                    "layers = [2, 1]\nbias = true", default="false"),
                Key("speed", "expression", "The diffusion speed `c` of the non-holonomic "
                    "neuron (18): `G^j = ẋ^j/c + x^j - σ(a^j)`; a positive number or a "
                    "parameter.", 'layers = [2, 1]\nspeed = "20"',
                    default="none (instantaneous neurons, eq. 4)"),
            ), kinds=("network",)),
    Section("action", "[action]",
            "The action `∫ ϖ(t) (½ q̇ᵀ M q̇ + F) dt` (eq. 7); networks take "
            "`F = -V`, the loss.", (
                Key("mass_x", "expression", "The mass `m_x` of every neuron output.",
                    'mass_x = "m_x"', default="1", kinds=("network",)),
                Key("mass_W", "expression", "The mass `m_W` of every weight.",
                    'mass_W = "m_W"', default="1", kinds=("network",)),
                Key("weight", "expression", "The time weight `ϖ(t)`, e.g. `exp(theta*t)`.",
                    'weight = "exp(theta*t)"', default="1"),
                Key("loss", "string or expression",
                    "The loss `V`: a named loss, or an expression of the outputs `x<o>`, "
                    "the targets `y<o>` and the weights `w<j>_<k>` (a regulariser).",
                    'loss = "(x5 - y5)**2/2 + 0.01*w5_3**2"',
                    default='"squared": `½ Σ_o (x_o - y_o)²`',
                    allowed=_names(LOSSES) + " or an expression", kinds=("network",)),
                Key("masses", "expression or list",
                    "One mass for every coordinate, or one per coordinate.",
                    'masses = "m"', default="1", kinds=("mechanical",)),
                Key("mass_matrix", "list of rows",
                    "A full mass matrix (expressions of the coordinates allowed).",
                    'mass_matrix = [["m", 0], [0, "m"]]', default="none",
                    kinds=("mechanical",)),
                Key("lagrangian", "expression",
                    "`F(t, q, q̇, q̈)`: the non-kinetic part of the Lagrangian.",
                    'lagrangian = "m*g*q1"', default="0", kinds=("mechanical",)),
            ), kinds=_LAGRANGIAN),
    Section("energy", "[energy]",
            "A Hopfield-like energy with one weight per undirected pair (Scellier & Bengio "
            "2017, eq. 1; `cognitive_action.declare.energy.hopfield`): free phase "
            "`ẋ = -∂E/∂x`, nudged phase `ẋ = -∂(E + βC)/∂x`, `C = ½Σ(x_o - y_o)²`. Give "
            "exactly one of `layers` and `edges`.", (
                Key("layers", "list of ≥ 2 integers in [1, 1000]", "Layer sizes; the "
                    "first layer is clamped to the inputs, the last is the output.",
                    "layers = [2, 4, 1]",
                    default="one of edges/layers required", kinds=("energy",)),
                Key("edges", "list of [unit, unit]", "Undirected edges (one symmetric "
                    "weight each), with `inputs` and `outputs`.",
                    "edges = [[1, 3], [2, 3], [3, 4]]\ninputs = [1, 2]\noutputs = [4]",
                    default="one of edges/layers required", kinds=("energy",)),
                Key("inputs", "list of units", "Clamped input units (with `edges`).",
                    "edges = [[1, 3], [2, 3], [3, 4]]\ninputs = [1, 2]\noutputs = [4]",
                    default="required with edges", kinds=("energy",)),
                Key("outputs", "list of units", "Output units, nudged toward the targets "
                    "(with `edges`).",
                    "edges = [[1, 3], [2, 3], [3, 4]]\ninputs = [1, 2]\noutputs = [4]",
                    default="required with edges", kinds=("energy",)),
                Key("activation", "string", "The activation `ρ` of the energy; a bounded "
                    "one keeps `E` bounded below.", 'layers = [2, 4, 1]\nactivation = "tanh"',
                    default='"logistic"', allowed=_names(ACTIVATIONS), kinds=("energy",)),
                Key("bias", "boolean", "A bias `b<i>` for every free unit.",
                    "layers = [2, 4, 1]\nbias = false", default="true", kinds=("energy",)),
            ), kinds=("energy",), example="[energy]\nlayers = [2, 4, 1]"),
    Section("constraints", "[[constraints]]",
            "Constraints, one table each: holonomic (`G(t, q) = 0`) or non-holonomic "
            "(`N(t, q, q̇) = 0`, if the expression names a velocity). A network's are "
            "added to its neuron constraints (4), e.g. tied weights.", (
                Key("name", "string", "The constraint's name; its multiplier is "
                    "`lambda_<name>` (`delta_<name>` when weighted, `mu_`/`nu_` when "
                    "non-holonomic).", 'name = "tie"\nexpr = "w3_1 - w4_2"',
                    default="`C<i>` (networks), generated (mechanical)"),
                Key("expr", "expression", "The constraint's left side (`= 0`).",
                    'expr = "w3_1 - w4_2"', default="required"),
            ), kinds=_LAGRANGIAN),
    Section("inputs", "[inputs]", "Input signals as expressions of `t` and the "
            "parameters. In an energy problem the inputs are clamped during a phase: "
            "numbers or constant expressions (`\"2*pi\"`), no `t` and no parameters; an "
            "input given neither here nor in `[initial] values` is drawn from `N(0, 1)` "
            "with `[initial] seed` (`simulate`, `verify`).",
            free_keys="input neuron labels; neurons not given are constant "
            "signals `e<i>`", kinds=("network", "energy"),
            example='[inputs]\n1 = "sin(omega*t)"\n2 = "1"'),
    Section("targets", "[targets]", "Targets as expressions of `t` and the parameters "
            "(energy problems: numbers, as `[inputs]`; a target not given is drawn from "
            "`U(0, 1)`).",
            free_keys="output neuron labels; outputs not given are constant signals "
            "`y<o>`", kinds=("network", "energy"),
            example='[targets]\n5 = "0.5*sin(omega*t)"'),
    Section("initial", "[initial]", "The initial state. Networks draw their weights; "
            "everything not given is completed so that `G = 0` and `Ġ = 0` at `t = 0` "
            "(eq. 11).", (
                Key("values", "table name = number",
                    "Given values of coordinates, velocities (`<q>_dot`), constant signals "
                    "(`e<i>`, `y<o>` not set in `[inputs]`/`[targets]`) or multiplier "
                    "states of eq. (20); the others are solved for (a constant signal "
                    "starts at rest). Energy problems: values of the inputs `e<i>` and "
                    "targets `y<o>` (the units start at 0). Any other name is an error.",
                    "values = { x1 = 0.5 }", default="{}"),
                Key("seed", "integer ≥ 0", "Seed of the weight draw.", "seed = 1",
                    default="0", kinds=("network", "energy")),
                Key("weight_scale", "number ≥ 0", "Scale `s` of the weight draw.",
                    "weight_scale = 0.5", default="1.0", kinds=("network", "energy")),
                Key("init", "string", "The weight initialiser.", 'init = "uniform_fan_in"',
                    default=f'"{DEFAULT_INITIALIZER}" (`N(0, s²/fan_in)`)',
                    allowed=_names(available_initializers()), kinds=("network",)),
            )),
    Section("simulate", "[simulate]", "Defaults of `cognitive-action simulate` (its "
            "options override them).", (
                Key("t_end", _POS, "Final time (runs start at 0).", "t_end = 2.0",
                    default="1.0"),
                Key("points", "integer ≥ 2", "Number of output times.", "points = 51",
                    default="101"),
                Key("method", "string", "The integrator.", 'method = "dopri"',
                    default='"cvodes"', allowed=_names(SIMULATION_METHODS)),
                Key("rtol", _POS, "Relative tolerance of adaptive methods.", "rtol = 1e-6",
                    default="1e-8"),
                Key("atol", _POS, "Absolute tolerance of adaptive methods.", "atol = 1e-9",
                    default="1e-10"),
                Key("variant", "string", "How anti-stable multiplier dynamics (eq. 20) run: "
                    "as derived, as the stable relaxation, or as the adjoint sweep.",
                    'variant = "relaxation"', default='"forward"',
                    allowed='`"forward"`, `"relaxation"`, `"adjoint"`'),
            )),
    Section("verify", "[verify]", "Settings of `cognitive-action verify`.", (
        Key("rtol", _POS, "Tolerance of the numeric backprop-limit check.", "rtol = 1e-8",
            default="1e-9"),
        Key("fd_rtol", _POS, "Tolerance of the finite-difference cross-check.",
            "fd_rtol = 1e-5", default="1e-6"),
        Key("gamma", _POS, "The learning-rate constant `γ` of eq. (14)-(17).",
            "gamma = 2.0", default="1.0"),
        Key("seed", "integer ≥ 0", "Seed of the random states the checks use.",
            "seed = 3", default="0"),
        Key("skip", "list of check names", "Checks not to run.", 'skip = ["convergence"]',
            default="[]", allowed="check names or their prefixes, e.g. "
            + _names(VERIFY_CHECKS)),
        Key("expect_fail", "list of check names", "Checks that document a known failure "
            "(reported `expected-fail`; a pass is `UNEXPECTED-PASS`).",
            'expect_fail = ["stability.multipliers"]', default="[]",
            allowed="as `skip`"),
        Key("law", "string", "The learning law the numeric backprop check judges, by "
            "registered name (never a module path).", 'law = "feedback_alignment"',
            default='"derived"', allowed='`"derived"`, `"sign_flipped"`, '
            '`"feedback_alignment"`, `"direct_feedback_alignment"` or a law registered '
            "with `verify.laws.register_law` or a `cognitive_action.laws` entry point"),
        Key("formulas", "table of tables", "Named formulas `unknown = \"expression\"` "
                "compared with the derived reduced system (e.g. the printed eq. 15); "
                "expressions may use the state, `delta_<constraint>` and `gamma`.",
            '[verify.formulas.mine]\nx5_ddot = "0"', default="{}"),
        Key("drift_tol", _POS, "Largest constraint drift `max |G|` of `verify "
            "--simulate`.", "drift_tol = 1e-5", default="1e-6"),
        Key("symbolic", "boolean", "Run the symbolic checks at any size (true) or none "
            "(false).", "symbolic = false", default="by size"),
        Key("budget", _POS, "Seconds each symbolic check may take.", "budget = 60",
            default="20"),
    )),
    Section("data", "[data]", "A data set to train on (`cognitive-action train`); "
            "`[inputs]`/`[targets]` stay unset.", (
                Key("source", "string", "The data set, by name (never a path or module); "
                    "the network must have its shape (digits: 64 inputs, 10 outputs).",
                    'source = "digits"', default="required", allowed='`"digits"`'),
                Key("split", "number in (0, 1)", "Fraction held out for testing.",
                    'source = "digits"\nsplit = 0.25', default="0.2"),
                Key("seed", "integer ≥ 0", "Seed of the split.",
                    'source = "digits"\nseed = 1', default="0"),
                Key("limit", "integer ≥ 2", "Use at most this many samples.",
                    'source = "digits"\nlimit = 300', default="all"),
            ), kinds=("network",)),
    Section("train", "[train]", "Defaults of `cognitive-action train` (needs `[data]`).", (
        Key("epochs", "integer ≥ 0", "Epochs of a full run.", "epochs = 3", default="3"),
        Key("learning_rate", _POS, "The learning rate.", "learning_rate = 0.05",
            default="0.05"),
        Key("seed", "integer ≥ 0", "Seed of the initial weights and sample order.",
            "seed = 0", default="0"),
        Key("quick_epochs", "integer ≥ 0", "Epochs of `--quick`.", "quick_epochs = 1",
            default="1"),
        Key("quick_samples", "integer ≥ 2", "Samples of `--quick`.", "quick_samples = 300",
            default="300"),
        Key("mode", "string", "The learning law that trains: the compiled backprop limit "
            "(eq. 15-17), the full derived dynamics (finite masses, time weight) or the "
            "diffusion law (eq. 18-20, speed `c`, stable variant).", 'mode = "dynamics"',
            default='"limit"', allowed='`"limit"`, `"dynamics"`, `"diffusion"`'),
        Key("tau", _POS, "Presentation time of a sample (dynamics, diffusion); the SGD "
            "learning rate is `η = τ/γ`.", "tau = 1.0", default="1.0"),
        Key("steps", "integer ≥ 1", "Exponential-integrator steps per sample (dynamics "
            "only).", "steps = 1", default="1"),
        Key("theta", _POS, "`θ` of the time weight `exp(θt)` (dynamics, diffusion); "
            "`m_W = γ/θ`.", "theta = 50.0", default="the problem's own `θ`"),
        Key("speed", _POS, "The diffusion speed `c` of eq. (18) (diffusion only; must "
            "exceed `θ`).", "speed = 200.0", default="200.0"),
    ), kinds=("network",)),
    Section("sweep", "[sweep]", "A parameter sweep run by `cognitive-action sweep FILE` on "
            "Dask (a local cluster by default), resumably: one task at every point of the "
            "axes ([Sweeps on Dask](sweeps.md)). The loader checks its keys; "
            "`cognitive_action.sweeps.section` checks its values before any work "
            "(`file:sweep.<key>`, exit code 2). The other commands ignore it. A one-line "
            "example below is a line of the table above.", (
                Key("axes", "table name = list", "The swept values by name: a parameter, "
                    "a state (its initial value), `seed` (integers ≥ 0); a `train` sweep "
                    "also `learning_rate` (numbers > 0) and `law` (`\"limit\"`, "
                    "`\"sgd\"`).", "axes = { theta = [0.4, 0.2, 0.1], seed = [0, 1] }",
                    default="required"),
                Key("task", "string", "What runs at every point: a simulation, the "
                    "verifier's checks, a training run on `[data]` (networks), or a "
                    "simulation with its distance to the run at `[sweep.convergence] "
                    "reference`.", 'task = "verify"\naxes = { seed = [0, 1, 2] }',
                    default='"simulate"', allowed='`"simulate"`, `"verify"`, `"train"`, '
                    '`"convergence"` or a name given to `sweeps.register_task`'),
                Key("mode", "string", "How the axes combine: every combination, or point "
                    "`i` takes the `i`-th value of every axis (axes of one length).",
                    'mode = "zip"\naxes = { theta = [0.1, 0.2], seed = [0, 1] }',
                    default='"grid"', allowed='`"grid"`, `"zip"`'),
                Key("times", "list [t0, tf]", "The output time span (`tf > t0`).",
                    "times = [0.0, 2.0]", default="`[0, [simulate] t_end]`"),
                Key("points", "integer ≥ 1", "Number of output times.", "points = 51",
                    default="`[simulate] points`"),
                Key("outputs", "list of state names", "The states stored (all if absent).",
                    'outputs = ["x5"]', default="all states"),
                Key("method", "string", "The integrator.", 'method = "dopri"',
                    default="`[simulate] method`", allowed=_names(SIMULATION_METHODS)),
                Key("rtol", _POS, "Relative tolerance of the integrator.", "rtol = 1e-6",
                    default="`[simulate] rtol`"),
                Key("atol", _POS, "Absolute tolerance of the integrator.", "atol = 1e-9",
                    default="`[simulate] atol`"),
                Key("epochs", "integer ≥ 0", "Epochs of every point (task `train` only, "
                    "networks with `[data]`).",
                    'task = "train"\naxes = { seed = [0, 1] }\nepochs = 2',
                    default="`[train] epochs`"),
                Key("learning_rate", _POS, "Learning rate of every point (`train` only; "
                    "or an axis).", 'task = "train"\naxes = { seed = [0, 1] }\n'
                    "learning_rate = 0.1", default="`[train] learning_rate`"),
                Key("convergence", "table", "Fit `variable ~ C axis^p` after the sweep; "
                    "see [sweep.convergence].", '[sweep]\ntask = "convergence"\n'
                    "axes = { theta = [0.4, 0.2, 0.1] }\n[sweep.convergence]\n"
                    'axis = "theta"\nreference = 0.0', default="none"),
                Key("scheduler", "string", "The address of a running Dask scheduler "
                    "(`cognitive-action sweep --scheduler` overrides it).",
                    'scheduler = "tcp://10.0.0.5:8786"', default="a local cluster"),
                Key("workers", "integer ≥ 1", "Worker processes of the local cluster.",
                    "workers = 2", default="2"),
                Key("chunk_size", "integer ≥ 1", "Points per Dask task.", "chunk_size = 8",
                    default="about 4 tasks per worker"),
            ), kinds=_LAGRANGIAN,
            example='[sweep]\ntask = "simulate"\naxes = { theta = [0.4, 0.2, 0.1], '
                    'seed = [0, 1] }\ntimes = [0.0, 2.0]\npoints = 51'),
    Section("sweep.convergence", "[sweep.convergence]", "The order `p` of "
            "`variable ~ C axis^p`, fitted in log-log over the sweep's points with a "
            "confidence interval (`verify.metrics.convergence_order`); the axis holds at "
            "least three positive values, the other axes one value each (grid).", (
                Key("axis", "string", "The axis the order is fitted against (not "
                    "`seed`).", 'axis = "theta"\nreference = 0.0', default="required"),
                Key("reference", "number", "The limit value of the axis, where the "
                    "reference run is made (task `convergence` only, which needs it; not "
                    "one of the axis' values).",
                    'axis = "theta"\nreference = 0.0', default="none"),
                Key("variable", "string", "The scalar result fitted: `distance` (the "
                    "largest `|y - y_reference|` over outputs and times) for task "
                    "`convergence`; a scalar result of the task otherwise (`train`: "
                    "`final_test_loss`, ...).",
                    'axis = "theta"\nreference = 0.0\nvariable = "distance"',
                    default='"distance"'),
                Key("confidence", "number in (0, 1)", "Level of the confidence interval "
                    "of `p`.", 'axis = "theta"\nreference = 0.0\nconfidence = 0.9',
                    default="0.95"),
            ), kinds=_LAGRANGIAN,
            example='[sweep]\ntask = "convergence"\naxes = { theta = [0.4, 0.2, 0.1] }\n'
                    '[sweep.convergence]\naxis = "theta"\nreference = 0.0'),
)

_BY_NAME = {s.name: s for s in SCHEMA}


def section(name: str) -> Section:
    """The section called ``name`` (``""``: the top level).

    Raises
    ------
    KeyError
        No such section.
    """
    return _BY_NAME[name]


def allowed_keys(name: str, kind: str | None = None) -> set[str]:
    """The fixed keys of a section, for problems of ``kind`` (``None``: any kind)."""
    return {k.name for k in section(name).keys if kind is None or kind in k.kinds}


def initial_value_names(problem: Problem) -> set[str]:
    """Names an ``[initial] values`` table may give for ``problem``: its coordinates and
    their velocities, its signals left as constants (``e1``, ``y5``: their values for
    the run) and their rates, and (vakonomic rule) the multiplier states of its
    non-holonomic constraints (eq. 20) and their velocities.

    Examples
    --------
    >>> from cognitive_action.problem_files.loader import load_problem
    >>> sorted(initial_value_names(load_problem("pendulum").problem))
    ['q1', 'q1_dot', 'q2', 'q2_dot']
    """
    names = {str(dot(q, k)) for q in (*problem.coordinates, *problem.signals)
             for k in (0, 1)}
    if problem.nonholonomic == "vakonomic":
        mults = generated_names(c.name for c in problem.nonholonomic_constraints)
        names |= set(mults) | {f"{m}_dot" for m in mults}
    return names


# -- the reference page ----------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    """The problem-file reference page (``docs/problem_files.md``), in Markdown.

    Returns
    -------
    str
        One section per table with a row per key: type, default, allowed values,
        applicable kinds, description, and a TOML example.
    """
    out = ["# Problem-file reference", "",
           "<!-- generated by docs/generate_reference.py from "
           "cognitive_action/problem_files/schema.py: edit the schema, not this page -->", "",
           "Every section and key a problem file may hold. The loader takes its allowed "
           "keys from the same schema (`cognitive_action.problem_files.schema`): a key not "
           "listed here is an error (`file:field: unknown key`, exit code 2), and so is a "
           "name in a table of names (parameters, neurons, `[initial] values`) that the "
           "problem does not have. Expressions are parsed against a whitelist, never "
           "evaluated ([Problem files](problems.md)).", "",
           "*kinds*: `network` files have a `[network]` table, `mechanical` files a "
           "`coordinates` list, `energy` files an `[energy]` table. Each example is a TOML "
           "fragment written under the "
           "section's header; `tests/test_problem_file_reference.py` loads every one.", ""]
    for s in SCHEMA:
        title = "Top level" if not s.name else f"`{s.header}`"
        out += [f"## {title}", "", s.description, ""]
        if s.kinds != KINDS:
            out += [f"Only in {' and '.join(s.kinds)} problems.", ""]
        if s.free_keys:
            out += [f"Keys: {s.free_keys}.", ""]
        if s.example:
            out += ["```toml", s.example, "```", ""]
        if s.keys:
            out += ["| key | type | default | allowed | kinds | description |",
                    "|---|---|---|---|---|---|"]
            for k in s.keys:
                out.append(f"| `{k.name}` | {_cell(k.type)} | {_cell(k.default)} | "
                           f"{_cell(k.allowed) or 'any'} | "
                           f"{', '.join(x for x in k.kinds if x in s.kinds)} | "
                           f"{_cell(k.description)} |")
            out += ["", "Examples:", ""]
            for k in s.keys:
                if "\n" not in k.example:  # one line, written under the section's header
                    out.append(f"- `{k.name}`: `{k.example}`")
                else:
                    header = s.header if s.header.startswith("[") and \
                        not k.example.startswith("[") else ""
                    body = "\n".join(x for x in (header, k.example) if x)
                    out += [f"- `{k.name}`:", "", "    ```toml",
                            *("    " + line for line in body.splitlines()), "    ```", ""]
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
