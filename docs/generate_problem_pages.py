"""Generate the "Shipped problems" pages: ``docs/problems/<name>.md`` and their figures.

For every problem shipped in ``problems/*.toml`` this script writes one page with

1. what the problem is (the file's ``description`` and the prose in :data:`PROSE`),
2. its problem file, verbatim,
3. its derived equations in LaTeX: the Euler-Lagrange equations (8)-(9) and the
   constraints, from :func:`cognitive_action.derive.latex` on the derived system
   (``cognitive-action derive NAME --latex``), and for holonomic problems the
   multiplier equation (10); truncated to :data:`MAX_ROWS` rows for the big networks,
4. the verifier's report (``cognitive-action verify NAME``) as a table,
5. the plot written by ``cognitive-action simulate NAME`` (copied to
   ``docs/figures/problems/<name>_trajectory.png``) with the command's summary line
   and what the plot shows (written by hand after looking at it, in :data:`PROSE`).

Run it from the repository root after a change to the engine or to a problem file::

    python docs/generate_problem_pages.py            # every shipped problem (~40 s)
    python docs/generate_problem_pages.py xor chain3 # some of them

The output is deterministic for a given machine and library version (seeded initial
weights, no timings in the pages). ``tests/test_docs.py`` re-derives the small problems
(chain3, xor, pendulum) and fails when the committed LaTeX differs: regenerate, review
the diff of the equations, and commit it with the change that caused it.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = DOCS / "problems"
FIGURES = DOCS / "figures" / "problems"

#: Rows of LaTeX shown per block; the big networks are truncated (the engine derives
#: every row; ``cognitive-action derive NAME --latex --max-rows N`` prints more).
MAX_ROWS = {"layered10": 6, "rolling_disc": 12, "feedback_alignment": 6,
            "direct_feedback_alignment": 6, "predictive_coding": 6}
DEFAULT_ROWS = 40
#: Problems whose multiplier equation (10) is printed in full (small and holonomic).
MULTIPLIER_EQUATION = ("chain3", "xor", "pendulum")
#: Extra ``simulate`` options per problem (the rate network runs the stable relaxation
#: of eq. 20 that its file's ``[simulate] variant`` asks for).
SIMULATE_ARGS: dict[str, list[str]] = {}
LATEX_BEGIN, LATEX_END = "<!-- latex:begin -->", "<!-- latex:end -->"

#: Hand-written prose per problem: ``what`` it is, what its plot ``shows``.
PROSE: dict[str, dict[str, str]] = {
    "chain3": {
        "what": (
            "The paper's smallest example (Section 3): input neuron 1 driven by "
            "$e^1(t) = \\sin t$, hidden neuron 2, output neuron 3 with target 0.5, "
            "instantaneous tanh neurons (eq. 4), the time weight $\\varpi = e^{\\theta t}$. "
            "Its matrix $T$ of eq. (17) is upper bidiagonal, so the multipliers are the "
            "backprop deltas computed output-first."),
        "shows": (
            "Top panel: the input $x_1 = \\sin t$ (dotted), the hidden and output neurons "
            "$x_2, x_3$ following it through tanh (nearly linear at these small net "
            "inputs), and the output's target 0.5 (dashed): $x_3$ peaks near 0.28, so the "
            "loss $V = \\tfrac12 (x_3 - 0.5)^2$ (fourth panel) falls from 0.125 to about "
            "0.03 at $t = \\pi/2$ and rises to 0.29 as the input turns negative. The "
            "weights $w_{2,1} \\approx 0.35$, $w_{3,2} \\approx 0.82$ barely move over 5 "
            "time units: with $\\gamma = \\theta m_W = 10$ the learning rate $1/\\gamma$ "
            "is small. The multipliers start at $\\delta_{G3} = 0.5 = y_3 - x_3$, the "
            "output's error, with the hidden deltas below it (the error passed back "
            "through the weights). The drift $\\max_j |G^j|$ stays below "
            "$2\\cdot10^{-7}$ without stabilization."),
    },
    "xor": {
        "what": (
            "The XOR network of Section 3: inputs 1, 2, hidden neurons 3, 4, output 5, the "
            "five constraints $G^1, \\dots, G^5$ of eq. (4), here on the single pattern "
            "$(1, 0) \\mapsto 1$."),
        "shows": (
            "With $x_1 = 1$, $x_2 = 0$ (dotted) the output $x_5$ climbs slowly from about "
            "0.08 toward its target 1 (dashed), 0.24 at $t = 5$, while the weights into "
            "it, $w_{5,4}$ (0.26 to 0.44), and $w_{4,1}$ grow: gradient descent with rate "
            "$1/\\gamma = 0.1$. The output's multiplier $\\delta_{G5}$ falls from 0.92 to "
            "0.76 with the error and the loss from 0.43 to 0.29. The drift stays below "
            "$10^{-8}$."),
    },
    "pendulum": {
        "what": (
            "A mechanical check of the engine: the non-minimal pendulum, coordinates "
            "$q_1, q_2$ with the rod constraint $q_1^2 + q_2^2 = L^2$ and gravity along "
            "$+q_1$. Its equations are compared with `sympy.physics.mechanics` in "
            "`tests/test_mechanics_references.py`; its multiplier equation (10) below is "
            "the reference $\\lambda = (2 g q_1 + 2\\dot q_1^2 + 2\\dot q_2^2)/"
            "(4q_1^2/m + 4q_2^2/m)$ of the design notes."),
        "shows": (
            "Released at rest from the horizontal ($q_1 = 0$, $q_2 = 1$), the bob swings "
            "through the bottom ($q_1 = 1$) to the other horizontal ($q_2 = -1$) and back: "
            "a 90° amplitude oscillation, $q_1$ at twice the frequency of $q_2$. The "
            "multiplier $\\lambda_{rod}$ (the rod's tension over $2L$) is 0 at the "
            "horizontals and peaks near 15 each time the bob passes the bottom. The drift "
            "of the rod constraint grows to about $6\\cdot10^{-6}$ over 10 time units "
            "without stabilization; `--stabilization projection` keeps it at "
            "$2.2\\cdot10^{-16}$."),
    },
    "rolling_disc": {
        "what": (
            "Kane's rolling disc: a thin disc rolling without slip on a plane, contact "
            "point $(x, y)$, yaw $q_1$, lean $q_2$, spin $q_3$, two non-holonomic rolling "
            "constraints, the Lagrange-d'Alembert rule (`nonholonomic = \"dalembert\"`). "
            "It is the non-holonomic reference of the engine (checked against "
            "`KanesMethod`); the paper's vakonomic rule gives other motions here."),
        "shows": (
            "The spin $q_3$ grows in steps and the yaw $q_1$ turns in steps while the "
            "lean $q_2$ rocks between about 0 and 1 rad: the wobbling disc rolls, turns, "
            "and rights itself. The contact point $(x, y)$ stays within about one radius "
            "of the origin. The multipliers of the two rolling constraints spike (to about "
            "$\\pm 15$) at each of these steps, when the contact forces turn the disc. "
            "The drift of the rolling constraints is a few $10^{-6}$."),
    },
    "rate_network": {
        "what": (
            "A cyclic rate network (a 2-3-4 loop, a self-loop on 3) of non-holonomic "
            "neurons with finite diffusion speed $c$, eq. (18)-(19): "
            "$G^j = c^{-1}\\dot x^j + x^j - \\sigma(a^j)$. Its multipliers obey the "
            "dynamics of eq. (20), derived here by the paper's (vakonomic) rule with the "
            "$\\theta \\nu / c$ term that eq. (20) drops (see [the errata](../errata.md))."),
        "shows": (
            "Eq. (20) is anti-stable forward in time (the verifier's "
            "`stability.multipliers` fails as documented, eigenvalue $\\approx c = 20$; "
            "`--variant forward` refuses to run, naming the predicted growth $e^{40.6}$), "
            "so the file asks for the stable relaxation $\\dot\\nu \\to -\\dot\\nu$ "
            "(`compile.stable_variant`). Over the 2 time units the input "
            "$x_1 = \\sin t$ (dotted) rises to its peak at $t = \\pi/2$, $x_2$ follows it "
            "to about 0.6, $x_3$ and $x_4$ stay small, below the output's target 0.3 "
            "(dashed), and the weights barely move ($m_W = 1$). The relaxed multiplier "
            "$\\nu_{G4}$ of the output rises within 0.3 time units to about 0.55 and then "
            "follows the error slowly; the loss moves between 0.045 and 0.058. The drift "
            "of the neuron constraints grows from $10^{-16}$ to about $2\\cdot10^{-8}$."),
    },
    "equilibrium_propagation": {
        "what": (
            "Equilibrium propagation (Scellier & Bengio 2017) on a Hopfield-like energy "
            "(their eq. 1) over the layers 2-4-1, logistic $\\rho$, one weight "
            "$w_{i,j}$ per undirected pair (so $W = W^\\top$ by construction) and a bias "
            "per free unit; cost $C = \\tfrac12 (x_7 - y_7)^2$. It is not an action with "
            "constraints but an energy model (`kind = \"energy\"`, "
            "`declare.energy.hopfield`): the phases are derived from the declared energy, "
            "and the verifier checks the EP update against recurrent backprop at the free "
            "fixed point. The law, its published claim and our measurements: "
            "[Equilibrium propagation](../laws/equilibrium_propagation.md)."),
        "shows": (
            "The free phase $\\dot x = -\\partial E/\\partial x$ from rest at the "
            "weights drawn by `[initial] seed = 0`: every neuron settles monotonically "
            "(the flow of a gradient, no oscillation) within about 5 time units, the "
            "hidden units to $-0.61 \\dots -0.10$ and the output $x_7$ to about "
            "$-0.39$, far from its target 0.8 (dashed): the free phase does not learn. "
            "The energy $E$ falls from 2.66 to 2.31 and never rises (a gradient flow), "
            "while the cost $C = \\tfrac12 (x_7 - y_7)^2$ grows from 0.32 to 0.71; the "
            "distance to the fixed point $\\max |\\dot x|$ falls exponentially to "
            "$5 \\cdot 10^{-6}$ at $t = 10$. An energy model has no constraints, so "
            "there is no drift panel."),
    },
    "layered10": {
        "what": (
            "The ten-level layered network of Section 2 (levels $l = 0, \\dots, 9$, "
            "$L = 9$; 2 inputs, eight hidden levels of 3, one output, 27 neurons, 72 "
            "weights) with instantaneous tanh neurons, inputs "
            "$(\\sin \\omega t, \\cos \\omega t)$ and target $0.5 \\sin \\omega t$. "
            "Large enough that the verifier's symbolic checks give way to numeric ones "
            "(rank by SVD)."),
        "shows": (
            "With 27 neurons and 72 weights the panels show 16 series each, the ones "
            "that change most (their titles say so), always with the output $x_{27}$: the "
            "inputs $x_1 = \\sin(t/2)$, $x_2 = \\cos(t/2)$ (dotted), neurons of the first "
            "levels, whose amplitude shrinks level by level (tanh of small weighted sums), "
            "and the output near 0 under its target $0.5 \\sin(t/2)$ (dashed). The "
            "weights barely move in 10 time units, so the loss "
            "$\\tfrac12 (x_{27} - 0.5\\sin(t/2))^2$ follows the target, from 0 to 0.125 "
            "and back; the output's multiplier $\\delta_{G27}$ is that error. The drift "
            "over all 27 constraints stays near $2\\cdot10^{-6}$."),
    },
    "feedback_alignment": {
        "what": (
            "A 4-16-16-3 tanh network judged with another learning law: feedback "
            "alignment (Lillicrap et al. 2016), named in the file's `[verify] law`. The "
            "problem itself is the paper's (its derived equations and simulation below "
            "are those of eq. 4-10); the verifier checks the *law* against backprop, "
            "lists the four `backprop.numeric` checks as expected failures (`expect_fail`:"
            " the law is not backprop) and measures its angle to the gradient along a "
            "teacher-student run (`alignment.training`). The law, the claim and the "
            "measurements over seeds: [Feedback alignment](../laws/feedback_alignment.md)."),
        "shows": "The paper's dynamics of this network (the law under test is judged by the "
            "verifier, not simulated): the four inputs $\\sin t, \\cos t, \\sin 2t, "
            "\\cos 2t$ and the first hidden neurons (the plot is capped at 12 "
            "coordinates), which follow their inputs through tanh. The drift of the 39 "
            "neuron constraints grows from round-off to about $10^{-6}$ by $t = 2$ "
            "without stabilization.",
    },
    "direct_feedback_alignment": {
        "what": (
            "The same 4-16-16-3 tanh network judged with direct feedback alignment "
            "(Nøkland 2016): the output error goes to every hidden neuron through one "
            "fixed random matrix. As for feedback alignment, the four `backprop.numeric` "
            "checks are expected failures and `alignment.training` measures the angle to "
            "the gradient along training. Law, claim and measurements: "
            "[Feedback alignment](../laws/feedback_alignment.md)."),
        "shows": "The paper's dynamics of this network (the law under test is judged by the "
            "verifier, not simulated): the four inputs $\\sin t, \\cos t, \\sin 2t, "
            "\\cos 2t$ and the first hidden neurons (the plot is capped at 12 "
            "coordinates), which follow their inputs through tanh. The drift of the 39 "
            "neuron constraints grows from round-off to about $10^{-6}$ by $t = 2$ "
            "without stabilization.",
    },
    "predictive_coding": {
        "what": (
            "A 3-6-5-2 tanh network judged with predictive coding (Whittington & Bogacz "
            "2017) at output precision $\\beta = 10^{-3}$: the verifier relaxes the value "
            "units to the inference equilibrium of the energy at every state, reports the "
            "law as not backprop at finite $\\beta$ (relative error about $\\beta$, the "
            "expected failures), and runs the law's own claims: `pc.precision_limit` (the "
            "update tends to backprop at order 1 in $\\beta$) and `pc.fixed_prediction` "
            "(the fixed-prediction schedule is backprop to round-off). The derived "
            "inference dynamics and weight update, in LaTeX, are on "
            "[Predictive coding](../laws/predictive_coding.md); the equations below are "
            "the network problem's own (eq. 4-10)."),
        "shows": "The paper's dynamics of this network (predictive coding is judged by the "
            "verifier at each state, not simulated here): the inputs $\\sin t, \\cos t, "
            "\\sin 2t$ and the first hidden neurons (the plot is capped at 12 "
            "coordinates). The drift of the 16 neuron constraints stays below "
            "$2\\cdot10^{-7}$.",
    },
}


def _derive(name: str):
    from cognitive_action.problem_files.loader import load_problem
    from cognitive_action.workflow import derive_spec

    spec = load_problem(name)
    return spec, derive_spec(spec)


def equations_latex(name: str) -> str:
    """The LaTeX blocks of a shipped problem's page: eq. (8)-(9) with the constraints,
    and eq. (10) for :data:`MULTIPLIER_EQUATION`; deterministic (no numbers from runs)."""
    from cognitive_action.derive import latex, multiplier_equation

    spec, el = _derive(name)
    rows = MAX_ROWS.get(name, DEFAULT_ROWS)
    if el.form == "energy":
        n = len(el.rates) + len(el.energy_gradient)
        more = f" (first {rows} of {n} rows)" if n > rows else ""
        return "\n".join([f"The phases $\\dot x = -\\partial(E + \\beta C)/\\partial x$ (free: "
                          f"$\\beta = 0$) and $\\partial E/\\partial w${more}:", "",
                          "$$", latex(el, max_rows=rows), "$$"])
    n = len(el.residuals) + len(spec.problem.constraints)
    more = f" (first {rows} of {n} rows)" if n > rows else ""
    out = [f"Euler-Lagrange equations (8)-(9) and the constraints{more}:", "",
           "$$", latex(el, max_rows=rows), "$$"]
    if name in MULTIPLIER_EQUATION:
        out += ["", "Multiplier equation (10), $(J M^{-1} J^\\top)\\,\\lambda = "
                "J M^{-1} f + h$, row by row:", "",
                "$$", latex(multiplier_equation(el), max_rows=rows), "$$"]
    return "\n".join(out)


def _cell(value: object) -> str:
    from cognitive_action.verify.report import _fmt

    return _fmt(value).replace("|", "\\|") or "-"


def verifier_table(name: str) -> str:
    """The verifier's report of a shipped problem as a Markdown table."""
    from cognitive_action.problem_files.loader import load_problem
    from cognitive_action.workflow import verify_spec

    result = verify_spec(load_problem(name))
    report, outcome = result.report, result.outcome
    n = report.counts()
    lines = [f"`cognitive-action verify {name}`: {n['pass']} passed, {n['fail']} failed, "
             f"{n['skip']} skipped.", "",
             "| check | outcome | value | tolerance | message |", "|---|---|---|---|---|"]
    for c in report.checks:
        msg = c.message.replace("|", "\\|")
        lines.append(f"| `{c.name}` | {outcome[c.name]} | {_cell(c.value)} | "
                     f"{_cell(c.tolerance)} | {msg} |")
    return "\n".join(lines)


def simulate_figure(name: str) -> str:
    """Run ``cognitive-action simulate`` and copy its plot; return its summary line."""
    from click.testing import CliRunner

    from cognitive_action.cli import main

    FIGURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        args = ["simulate", name, "--out", tmp, *SIMULATE_ARGS.get(name, [])]
        res = CliRunner().invoke(main, args)
        if res.exit_code != 0:
            raise RuntimeError(f"simulate {name} failed: {res.output}")
        shutil.copyfile(Path(tmp) / f"{name}_trajectory.png",
                        FIGURES / f"{name}_trajectory.png")
    line = res.output.splitlines()[0]
    command = " ".join(["cognitive-action", *args[:2], *SIMULATE_ARGS.get(name, [])])
    return f"`{command}`: " + re.sub(r", [0-9.]+ s;", ";", line.split(": ", 1)[1])


def _multiplier_note(spec) -> str:
    if getattr(spec.problem, "learnable", None) is not None:  # an energy model
        return ("gradient flows of the declared energy: no constraints, no multipliers; "
                "the EP update reads $\\partial E/\\partial w$ at the fixed points")
    if spec.network is not None:
        nonholonomic = ("; $\\nu$ for the non-holonomic neurons"
                        if spec.problem.nonholonomic_constraints else "")
        return ("the multipliers are scaled, $\\delta = \\lambda/\\varpi$, and named after "
                "their constraints" + nonholonomic)
    return ("the multipliers are named after their constraints: $\\lambda$ for holonomic, "
            "$\\mu$ for non-holonomic ones")


def page(name: str) -> str:
    """The Markdown page of one shipped problem."""
    from cognitive_action.problem_files.loader import load_problem, shipped_problems

    spec = load_problem(name)
    source = shipped_problems()[name].read_text()
    prose = PROSE[name]
    return "\n".join([
        f"# {name}", "",
        "<!-- generated by docs/generate_problem_pages.py: edit the script, not this page -->",
        "", f"*{spec.description}*", "", prose["what"], "",
        "## Problem file", "",
        f"`problems/{name}.toml` (load it with `load_problem(\"{name}\")` or pass the name "
        "to any command):", "",
        "```toml", source.rstrip("\n"), "```", "",
        "## Derived equations", "",
        f"`cognitive-action derive {name} --latex` ({_multiplier_note(spec)}):", "",
        LATEX_BEGIN, equations_latex(name), LATEX_END, "",
        "## Verifier report", "",
        verifier_table(name), "",
        "## Simulation", "",
        simulate_figure(name) + ".", "",
        f"![{name}: simulated trajectory](../figures/problems/{name}_trajectory.png)", "",
        prose["shows"], "",
    ])


def committed_latex(name: str) -> str:
    """The LaTeX block committed in ``docs/problems/<name>.md``."""
    text = (PAGES / f"{name}.md").read_text()
    return text.split(LATEX_BEGIN, 1)[1].split(LATEX_END, 1)[0].strip("\n")


def main(names: list[str]) -> None:
    from cognitive_action.problem_files.loader import load_problem, shipped_problems

    PAGES.mkdir(parents=True, exist_ok=True)
    shipped = shipped_problems()
    # problems trained on a data set ([data], e.g. digits) have hand-written pages
    for name in names or [n for n in sorted(shipped) if not load_problem(shipped[n]).data]:
        (PAGES / f"{name}.md").write_text(page(name))
        print(f"wrote {PAGES / (name + '.md')}")


if __name__ == "__main__":
    main(sys.argv[1:])
