"""The problem-file reference (``docs/problem_files.md``) and the loader agree.

The set of keys the loader accepts is found by probing the loader, not read from the
schema object: every documented key's example is loaded into a small valid file (it
must load), an unknown key is put into every table (it must be refused with
``section.key``), and every key documented for one table is put into every other table
(it must be refused there unless documented there too). String keys the loader and the
workflow read from settings tables (found in their source) are probed the same way.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import sys
from pathlib import Path

import pytest

from cognitive_action.errors import ProblemFileError
from cognitive_action.problem_files import schema
from cognitive_action.problem_files.loader import load_problem, parse_problem, shipped_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "problem_files.md"

NETWORK = tomllib.loads("""
name = "probe"
parameters = { m_x = 0.001, m_W = 1.0, theta = 10.0, omega = 1.0, m = 1.0, g = 9.81 }
[network]
layers = [2, 2, 1]
[action]
mass_x = "m_x"
""")
MECHANICAL = tomllib.loads("""
name = "probe"
kind = "mechanical"
coordinates = ["q1", "q2"]
parameters = { m = 1.0, g = 9.81, theta = 1.0, omega = 1.0 }
[action]
masses = "m"
lagrangian = "m*g*q1"
[[constraints]]
name = "rod"
expr = "q1**2 + q2**2 - 1"
""")
ENERGY = tomllib.loads("""
name = "probe"
kind = "energy"
[energy]
layers = [2, 2, 1]
[inputs]
1 = "0.5"
""")
#: Tables with fixed keys, and where a probe key goes in each.
CLOSED = [s.name for s in schema.SCHEMA if s.keys]


def _base(kind: str) -> dict:
    return copy.deepcopy({"network": NETWORK, "energy": ENERGY}.get(kind, MECHANICAL))


def _with(section: str, fragment: str, kind: str) -> dict:
    """The base file of ``kind`` with a section replaced by a documented fragment."""
    sec = schema.section(section)
    header = sec.header if section and sec.header.startswith("[") and \
        not fragment.startswith("[") else ""
    parsed = tomllib.loads(f"{header}\n{fragment}")
    data = _base(kind)
    for k, v in parsed.items():
        data[k] = v  # a top-level key, or a whole table replaced
    if section == "train":
        data.setdefault("data", {"source": "digits"})  # [train] needs [data]
    return _fit_data(data)


def _fit_data(data: dict) -> dict:
    """A probe with a [data] table gets a network of the data set's shape (the loader
    checks the network against the data set)."""
    if "data" in data and "network" in data and "layers" in data["network"]:
        data["network"] = dict(data["network"], layers=[64, 2, 10])
    return data


def _table(data: dict, section: str) -> dict:
    """The table ``section`` of ``data`` (``"sweep.convergence"``: a sub-table), made if
    absent."""
    for part in section.split("."):
        data = data.setdefault(part, {})
    return data


def _get(data: dict, section: str) -> dict:
    for part in section.split("."):
        data = data.get(part, {})
    return data


def _insert(data: dict, section: str, key: str) -> tuple[dict, str]:
    """``data`` with ``key`` added to ``section``; the field the loader should name."""
    data = copy.deepcopy(data)
    value = 1
    if section == "":
        data[key] = value
        return data, key
    if section == "constraints":
        data.setdefault("constraints", [{"expr": "q1 - q2"}])
        data["constraints"][0][key] = value
        return data, f"constraints[0].{key}"
    table = _table(data, section)
    if section == "train":
        data.setdefault("data", {"source": "digits"})
    if section == "data":
        table.setdefault("source", "digits")
    table[key] = value
    return _fit_data(data), f"{section}.{key}"


def _kind_of(section: str, key: schema.Key) -> str:
    kinds = [k for k in key.kinds if k in schema.section(section).kinds]
    return kinds[0]


def _accepts(data: dict, field: str) -> bool:
    """Whether the loader takes ``data``'s key at ``field``: anything but a refusal of
    that key as unknown (a refusal of its value means the key was read)."""
    try:
        parse_problem(data, path="probe.toml")
    except ProblemFileError as exc:
        return not (exc.field == field and "unknown" in exc.message)
    return True


def test_the_committed_page_is_generated_from_the_schema():
    spec = importlib.util.spec_from_file_location("generate_reference",
                                                  ROOT / "docs" / "generate_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert PAGE.read_text(encoding="utf-8") == schema.markdown(), \
        "regenerate: python docs/generate_reference.py"


@pytest.mark.parametrize("section, key", [(s.name, k) for s in schema.SCHEMA
                                          for k in s.keys],
                         ids=lambda v: getattr(v, "name", v) or "top")
def test_every_documented_key_loads_with_its_example(section, key):
    spec = parse_problem(_with(section, key.example, _kind_of(section, key)),
                         path="probe.toml")
    assert spec.name == "probe" or key.name == "name"


@pytest.mark.parametrize("s", [s for s in schema.SCHEMA if s.example],
                         ids=lambda s: s.name)
def test_tables_of_names_load_with_their_example(s):
    parse_problem(_with(s.name, s.example, s.kinds[0]), path="probe.toml")


@pytest.mark.parametrize("section", CLOSED, ids=lambda s: s or "top")
def test_an_unknown_key_is_refused_with_its_field(section):
    kind = schema.section(section).kinds[0]
    data, field = _insert(_base(kind), section, "zz_not_a_key")
    with pytest.raises(ProblemFileError) as info:
        parse_problem(data, path="probe.toml")
    assert info.value.field == field and "unknown" in info.value.message
    assert "probe.toml" in str(info.value)


def _keys_read_in_source() -> set[str]:
    """String keys read with ``.get("k")``, ``x["k"]`` or ``"k" in x`` in the loader, the
    workflow and the ``[sweep]`` reader: any of them the loader accepts must be
    documented."""
    found: set[str] = set()
    for rel in ("cognitive_action/problem_files/loader.py", "cognitive_action/workflow.py",
                "cognitive_action/sweeps/section.py"):
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("get", "setdefault") and node.args and \
                    isinstance(node.args[0], ast.Constant) and \
                    isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                    and isinstance(node.slice.value, str):
                found.add(node.slice.value)
            elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and \
                    isinstance(node.left.value, str) and \
                    isinstance(node.ops[0], (ast.In, ast.NotIn)):
                found.add(node.left.value)
    return {k for k in found if k.isidentifier()}


def test_the_loader_accepts_no_undocumented_key():
    """Every key documented anywhere, and every string key the code reads, is tried in
    every table: accepted exactly where the page documents it (for that kind)."""
    documented = {k.name for s in schema.SCHEMA for k in s.keys}
    candidates = documented | _keys_read_in_source()
    assert {"t_end", "fd_rtol", "weight_scale", "quick_samples", "chunk_size",
            "confidence"} <= candidates
    wrong = []
    for s in schema.SCHEMA:
        if not s.keys:
            continue
        for kind in s.kinds:
            here = schema.allowed_keys(s.name, kind)
            base = _base(kind)
            for key in sorted(candidates - here):
                if key in _get(base, s.name) if s.name else key in base:
                    continue
                data, field = _insert(base, s.name, key)
                if _accepts(data, field):
                    wrong.append(f"[{s.name}] {key} ({kind}): accepted, not documented")
    assert wrong == [], "\n".join(wrong)


def test_every_shipped_and_example_file_uses_documented_keys_only():
    files = list(shipped_problems().values()) + sorted((ROOT / "examples").glob("*.toml"))
    assert len(files) >= 8
    for path in files:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        kind = data.get("kind", "network" if "network" in data else
                        "energy" if "energy" in data else "mechanical")
        assert set(data) <= schema.allowed_keys(""), path
        for name, table in data.items():
            if name in CLOSED and name:
                rows = table if isinstance(table, list) else [table]
                for row in rows:
                    assert set(row) <= schema.allowed_keys(name, kind), (path, name)
        if "convergence" in data.get("sweep", {}):
            assert set(data["sweep"]["convergence"]) <= schema.allowed_keys(
                "sweep.convergence", kind), path
        load_problem(path)


def test_unknown_names_in_initial_values_are_refused():
    """Issue 17: ``[initial] values`` with a name the problem does not have was ignored."""
    data = copy.deepcopy(MECHANICAL)
    data["initial"] = {"values": {"q1": 0.0, "q3": 1.0}}
    with pytest.raises(ProblemFileError) as info:
        parse_problem(data, path="probe.toml")
    assert info.value.field == "initial.values.q3"
    assert "q1_dot" in info.value.fix
    data["initial"] = {"values": {"q1": 0.0, "q2_dot": 1.0}}
    parse_problem(data, path="probe.toml")
    # a constant signal's value may be given there (a network without [inputs])
    net = copy.deepcopy(NETWORK)
    net["initial"] = {"values": {"e1": 1.0, "e2": 0.0, "y5": 1.0}}
    parse_problem(net, path="probe.toml")
    # vakonomic multiplier states of eq. (20) are states too
    rate = load_problem("rate_network")
    names = schema.initial_value_names(rate.problem)
    from cognitive_action.workflow import derive_spec
    el = derive_spec(rate)
    assert {str(m) for m in el.nonholonomic_multipliers} <= names


def test_schema_lists_match_the_layers_it_may_not_import():
    from cognitive_action.compile.options import METHODS

    assert schema.SIMULATION_METHODS == METHODS


def test_readme_points_to_the_reference():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/problem_files.md" in readme


def test_the_sweep_tables_are_probed():
    """[sweep] and [sweep.convergence] are closed tables of the probe: an unknown key in
    either is refused by the loader with its field (it was kept as written before)."""
    assert {"sweep", "sweep.convergence"} <= set(CLOSED)
    for section in ("sweep", "sweep.convergence"):
        data, field = _insert(_base("mechanical"), section, "zz_not_a_key")
        with pytest.raises(ProblemFileError) as info:
            parse_problem(data, path="probe.toml")
        assert info.value.field == field == f"{section}.zz_not_a_key"


def _sweep_examples():
    """Every key's example in the probe of its first kind (state names such as ``x5``
    are a network's), and the section examples (no state names) in every kind."""
    for name in ("sweep", "sweep.convergence"):
        for key in schema.section(name).keys:
            yield name, key, _kind_of(name, key)
        for kind in schema.section(name).kinds:
            yield name, schema.Key("(section example)", "", "", "# the section's", kinds=(
                kind,)), kind


@pytest.mark.parametrize("name, key, kind", list(_sweep_examples()),
                         ids=lambda v: getattr(v, "name", v))
def test_every_sweep_example_builds_a_sweep(name, key, kind):
    """The page's [sweep] examples work, not only load: each key's example, written
    into the section's example (its keys replacing those there), is accepted by the
    sweep reader (:func:`cognitive_action.sweeps.section.sweep_from_problem`), which
    checks the values (the loader only checks the keys)."""
    from cognitive_action.sweeps.section import sweep_from_problem

    data = _with(name, schema.section(name).example, kind)
    fragment = tomllib.loads(f"{schema.section(name).header}\n{key.example}"
                             if not key.example.startswith("[") else key.example)
    if name == "sweep":
        data["sweep"].update(fragment["sweep"])
    else:
        data["sweep"]["convergence"].update(fragment["sweep"]["convergence"])
    if data["sweep"].get("task") == "train":
        data["data"] = {"source": "digits", "limit": 20}
        data = _fit_data(data)
    sweep = sweep_from_problem(parse_problem(data, path="probe.toml"))
    assert sweep.spec.size >= 1
    raw = data["sweep"]
    assert sweep.spec.task == raw.get("task", "simulate")
    assert set(sweep.spec.axes) == set(raw["axes"])
