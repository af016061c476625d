"""The derivation engine against sympy.physics.mechanics, an independent reference.

Each test declares one mechanical system through cognitive_action's API, derives it with
our engine, and compares with what ``sympy.physics.mechanics`` (``LagrangesMethod``,
``KanesMethod``) derives for the same system inside the test, and with the closed forms
listed in ``design.md`` ("Reference results to test against").

Sign conventions (checked by hand, see ``design.md``, "SymPy quirks"):

- ``LagrangesMethod.eom`` is ``d/dt L_q̇ - L_q - Q + Cᵀ λ`` with ``C`` the Jacobian of the
  velocity-level constraints with respect to ``q̇`` (``d/dt G`` for holonomic ``G``, the
  constraint itself for non-holonomic ones). For holonomic constraints ``C = G_q``, for
  non-holonomic ones this is the Lagrange-d'Alembert rule. Our
  ``EulerLagrange.equations_of_motion()`` (``-E_i``) has the same sign, so multipliers
  compare one to one.
- ``LagrangesMethod.solve_multipliers()`` returns the multipliers that satisfy ``eom``;
  ``LagrangesMethod.rhs()`` returns them with the opposite sign (sympy issue 30215), so
  multipliers are taken from ``solve_multipliers()`` and only accelerations from
  ``rhs()``.
- sympy's ``test_lagrange.py::test_rolling_disc`` omits the rolling constraints (sympy
  issue 27631); the rolling disc reference is Kane's (``test_kane.py::test_rolling_disc``).
- Our multipliers are named ``lambda_<name>`` (holonomic) and ``mu_<name>``
  (non-holonomic); with a time weight ``ϖ`` they are ``δ = λ/ϖ`` and the residuals are
  divided by ``ϖ``.

Expressions from mechanics (``dynamicsymbols``) are converted to jet symbols with
``to_jet_form``; parameters are the same real symbols on both sides. Comparisons are
symbolic (``simplify(ours - theirs) == 0``) except for the rolling disc, which is compared
at random points with 30-digit arithmetic to a tolerance of 1e-12.
"""

from __future__ import annotations

import random

import sympy as sp
from sympy.physics.mechanics import (
    KanesMethod,
    LagrangesMethod,
    Lagrangian,
    Particle,
    Point,
    ReferenceFrame,
    RigidBody,
    dynamicsymbols,
    inertia,
)

from cognitive_action.declare import symbols as S  # noqa: N812 (the API's documented alias)
from cognitive_action.declare.problem import Action, Constraint, Problem
from cognitive_action.derive.euler_lagrange import euler_lagrange
from cognitive_action.derive.multipliers import multiplier_equation

DIGITS = 30
TOL = 1e-12


# -- helpers ---------------------------------------------------------------------------------
def _zero(expr: sp.Expr) -> bool:
    """``simplify(expr) == 0``, trying trig simplification as well."""
    e = sp.simplify(expr)
    return e == 0 or sp.simplify(sp.trigsimp(sp.expand(e))) == 0


def _solve_symbolic(el) -> dict[sp.Symbol, sp.Expr]:
    """Solve ``mass_matrix · unknowns = forcing`` symbolically (small systems only)."""
    M = el.mass_matrix.to_matrix()
    sol = M.LUsolve(sp.Matrix(el.forcing))
    return {u: sp.simplify(v) for u, v in zip(el.unknowns, sol)}


def _solve_numeric(el, values: dict[sp.Symbol, sp.Expr]) -> dict[sp.Symbol, sp.Float]:
    """Solve the mass-matrix form at a point with ``DIGITS``-digit arithmetic."""
    M = el.mass_matrix.to_matrix().xreplace(values).evalf(DIGITS)
    f = sp.Matrix(el.forcing).xreplace(values).evalf(DIGITS)
    assert not M.free_symbols and not f.free_symbols, "a symbol has no value at the point"
    sol = M.LUsolve(f)
    return dict(zip(el.unknowns, sol))


def _jet(*names: str) -> tuple[sp.Symbol, ...]:
    """The jet symbols (real) that ``to_jet_form`` produces for dynamicsymbols ``names``."""
    return tuple(S.symbol(n) for n in names)


def _theirs_multipliers(lm: LagrangesMethod, ours: tuple[sp.Symbol, ...]) -> dict:
    """Map LagrangesMethod's ``lam1, lam2, …`` (in jet form) to our multiplier symbols."""
    return {S.to_jet_form(lt): lo for lt, lo in zip(lm.lam_vec, ours)}


# -- the non-minimal pendulum (sympy test_lagrange.py::test_nonminimal_pendulum) -------------
def test_nonminimal_pendulum():
    """Point mass on a rod, ``q1² + q2² - L² = 0``, with the force ``m g`` along +x.

    Reference: ``LagrangesMethod`` with ``hol_coneqs`` and the force in ``forcelist``
    (sympy's ``test_nonminimal_pendulum`` with symbolic ``g``). Ours declares the force as
    the potential term ``F = m g q1``. Compared symbolically: the equations of motion
    ``[m q̈1 - g m + 2λ q1, m q̈2 + 2λ q2]``, the multiplier of eq. (10)
    ``λ = (2 g q1 + 2q̇1² + 2q̇2²)/(4q1²/m + 4q2²/m)`` against ``solve_multipliers()``
    (same sign as ours), ``λ = m g/(2L)`` hanging at rest, the accelerations of the
    mass-matrix form against ``rhs()``, and ``MultiplierEquation.solve`` at random points.
    """
    m, g, L = S.parameters("m g L")
    # theirs
    q1t, q2t = dynamicsymbols("q1 q2")
    N = ReferenceFrame("N")
    O = Point("O")
    O.set_vel(N, 0)
    P = O.locatenew("P", q1t * N.x + q2t * N.y)
    P.set_vel(N, P.pos_from(O).dt(N))
    lm = LagrangesMethod(Lagrangian(N, Particle("pP", P, m)), [q1t, q2t],
                         hol_coneqs=[q1t**2 + q2t**2 - L**2], forcelist=[(P, m * g * N.x)],
                         frame=N)
    lm.form_lagranges_equations()

    # ours
    q1, q2 = S.coordinates("q1 q2")
    p = Problem(Action([q1, q2], masses=m, lagrangian=m * g * q1),
                [Constraint(q1**2 + q2**2 - L**2, name="rod")], parameters=[m, g, L])
    el = euler_lagrange(p)
    (lam,) = el.multipliers
    q1d, q2d, q1dd, q2dd = S.dot(q1), S.dot(q2), S.dot(q1, 2), S.dot(q2, 2)

    # equations of motion: ours, theirs, and design.md's
    to_ours = _theirs_multipliers(lm, el.multipliers)
    theirs_eom = [S.to_jet_form(e).xreplace(to_ours) for e in lm.eom]
    expected = [m * q1dd - g * m + 2 * lam * q1, m * q2dd + 2 * lam * q2]
    for ours_e, theirs_e, exp_e in zip(el.equations_of_motion(), theirs_eom, expected):
        assert sp.expand(ours_e - theirs_e) == 0
        assert sp.expand(ours_e - exp_e) == 0

    # the multiplier, eq. (10)
    lam_closed = (2 * g * q1 + 2 * q1d**2 + 2 * q2d**2) / (4 * q1**2 / m + 4 * q2**2 / m)
    lam_theirs = S.to_jet_form(lm.solve_multipliers(sol_type="Matrix")[0])
    me = multiplier_equation(p)
    lam_ours = me.b()[0] / me.A()[0, 0]
    assert _zero(lam_ours - lam_theirs)
    assert _zero(lam_ours - lam_closed)
    assert sp.simplify(lam_ours.subs({q1d: 0, q2d: 0, q1: L, q2: 0})) == m * g / (2 * L)

    # the mass-matrix form: accelerations against rhs(), multiplier against solve_multipliers
    ours = _solve_symbolic(el)
    rhs = [S.to_jet_form(e) for e in lm.rhs()]
    assert _zero(ours[q1dd] - rhs[2]) and _zero(ours[q2dd] - rhs[3])
    assert _zero(ours[lam] - lam_theirs)

    # the numeric solve of eq. (10) at random points
    rng = random.Random(2)
    for _ in range(5):
        pt = {s: sp.Float(rng.uniform(0.3, 2.0), DIGITS) for s in (m, g, L, q1, q2, q1d, q2d)}
        (num,) = me.solve(pt)
        assert abs(num - float(lam_closed.xreplace(pt))) <= TOL * max(1.0, abs(num))


# -- the disc rolling down an incline (sympy test_lagrange.py::test_disc_on_an_incline_plane) -
def test_disc_on_incline():
    """Uniform disc of radius ``R`` rolling without slip down a plane inclined by ``α``.

    Reference: ``LagrangesMethod`` with the holonomic rolling constraint ``y - R θ = 0``
    (sympy's ``test_disc_on_an_incline_plane``). Ours is declared with the Lagrangian
    ``T - V``, ``T`` taken from mechanics' ``RigidBody.kinetic_energy`` (converted to jet
    form), ``V = m g (l - y) sin α``. Compared symbolically: equations of motion,
    ``ÿ = 2 g sin α / 3`` and ``θ̈ = ÿ/R`` against ``rhs()`` and the closed form, and the
    multiplier (the friction force, ``λ = m g sin α / 3``) against ``solve_multipliers()``.
    """
    m, g, R, l, alpha = S.parameters("m g R l alpha")
    yt, tht = dynamicsymbols("y theta")
    N = ReferenceFrame("N")
    A = N.orientnew("A", "Axis", [sp.pi / 2 - alpha, N.z])
    B = A.orientnew("B", "Axis", [-tht, A.z])
    Do = Point("Do")
    Do.set_vel(N, yt.diff(S.t) * A.x)
    D = RigidBody("D", Do, B, m, (m * R**2 / 2 * (B.z | B.z), Do))
    D.potential_energy = m * g * (l - yt) * sp.sin(alpha)
    lm = LagrangesMethod(Lagrangian(N, D), [yt, tht], hol_coneqs=[yt - R * tht])
    lm.form_lagranges_equations()

    y, th = S.coordinates("y theta")
    T = S.to_jet_form(D.kinetic_energy(N))
    V = S.to_jet_form(D.potential_energy)
    p = Problem(Action([y, th], lagrangian=T - V), [Constraint(y - R * th, name="roll")],
                parameters=[m, g, R, l, alpha])
    el = euler_lagrange(p)
    (lam,) = el.multipliers

    to_ours = _theirs_multipliers(lm, el.multipliers)
    for ours_e, theirs_e in zip(el.equations_of_motion(), lm.eom):
        assert _zero(ours_e - S.to_jet_form(theirs_e).xreplace(to_ours))

    ours = _solve_symbolic(el)
    rhs = [S.to_jet_form(e) for e in lm.rhs()]
    ydd, thdd = S.dot(y, 2), S.dot(th, 2)
    assert _zero(ours[ydd] - rhs[2]) and _zero(ours[thdd] - rhs[3])
    assert _zero(ours[ydd] - 2 * g * sp.sin(alpha) / 3)
    assert _zero(ours[thdd] - 2 * g * sp.sin(alpha) / (3 * R))
    lam_theirs = S.to_jet_form(lm.solve_multipliers(sol_type="Matrix")[0])
    assert _zero(ours[lam] - lam_theirs)
    assert _zero(ours[lam] - m * g * sp.sin(alpha) / 3)


# -- the knife edge (skate): non-holonomic, Lagrange-d'Alembert -------------------------------
def test_knife_edge():
    """A skate at ``(x, y)`` heading ``φ`` that cannot slide sideways: ``cos φ ẏ - sin φ ẋ = 0``.

    Non-holonomic, linear in velocities; declared with ``nonholonomic="dalembert"`` (the
    rule of classical mechanics and of ``LagrangesMethod(nonhol_coneqs=...)``). Reference:
    ``LagrangesMethod`` with ``nonhol_coneqs`` on ``L = ½ m (ẋ² + ẏ²) + ½ I φ̇²``.
    Compared symbolically: equations of motion (theirs' ``lam1`` mapped to our ``μ``),
    the accelerations of the mass-matrix form against ``rhs()``, ``φ̈ = 0``, and
    ``μ = -m φ̇ (cos φ ẋ + sin φ ẏ)`` against ``solve_multipliers()`` (the sign follows
    the sign chosen for the constraint; ours and theirs use the same one).
    """
    m, Iz = S.parameters("m I_z")
    xt, yt, pht = dynamicsymbols("x y phi")
    xd, yd, phd = (v.diff(S.t) for v in (xt, yt, pht))
    lag = m * (xd**2 + yd**2) / 2 + Iz * phd**2 / 2
    lm = LagrangesMethod(lag, [xt, yt, pht],
                         nonhol_coneqs=[sp.cos(pht) * yd - sp.sin(pht) * xd])
    lm.form_lagranges_equations()

    x, y, phi = S.coordinates("x y phi")
    p = Problem(Action([x, y, phi], masses=[m, m, Iz]),
                [Constraint(S.to_jet_form(lm.coneqs[0]), name="blade")],
                parameters=[m, Iz], nonholonomic="dalembert")
    el = euler_lagrange(p)
    assert [c.kind for c in p.constraints] == ["nonholonomic"]
    assert el.multipliers == () and len(el.nonholonomic_multipliers) == 1
    (mu,) = el.nonholonomic_multipliers

    to_ours = _theirs_multipliers(lm, el.nonholonomic_multipliers)
    for ours_e, theirs_e in zip(el.equations_of_motion(), lm.eom):
        assert sp.expand(ours_e - S.to_jet_form(theirs_e).xreplace(to_ours)) == 0

    ours = _solve_symbolic(el)
    rhs = [S.to_jet_form(e) for e in lm.rhs()]
    for k, q in enumerate((x, y, phi)):
        assert _zero(ours[S.dot(q, 2)] - rhs[3 + k])
    assert ours[S.dot(phi, 2)] == 0
    xdot, ydot, phidot = S.dot(x), S.dot(y), S.dot(phi)
    mu_closed = -m * phidot * (sp.cos(phi) * xdot + sp.sin(phi) * ydot)
    mu_theirs = S.to_jet_form(lm.solve_multipliers(sol_type="Matrix")[0])
    assert _zero(ours[mu] - mu_theirs)
    assert _zero(ours[mu] - mu_closed)


# -- Kane's rolling disc (sympy test_kane.py::test_rolling_disc) ------------------------------
def _rolling_disc_kane(r, m, g):
    """Kane's rolling disc exactly as in sympy's ``test_kane.py``: returns ``u̇(q, u)``,
    the map ``u(q, q̇)`` of its kinematic equations, and the dynamicsymbols used."""
    q1, q2, q3, u1, u2, u3 = dynamicsymbols("q1 q2 q3 u1 u2 u3")
    N = ReferenceFrame("N")
    Y = N.orientnew("Y", "Axis", [q1, N.z])
    L = Y.orientnew("L", "Axis", [q2, Y.x])
    R = L.orientnew("R", "Axis", [q3, L.y])
    w_R_N_qd = R.ang_vel_in(N)
    R.set_ang_vel(N, u1 * L.x + u2 * L.y + u3 * L.z)
    C = Point("C")
    C.set_vel(N, 0)
    Dmc = C.locatenew("Dmc", r * L.z)
    Dmc.v2pt_theory(C, N, R)
    I = inertia(L, m / 4 * r**2, m / 2 * r**2, m / 4 * r**2)
    kd = [(R.ang_vel_in(N) - w_R_N_qd).dot(uv) for uv in L]
    KM = KanesMethod(N, q_ind=[q1, q2, q3], u_ind=[u1, u2, u3], kd_eqs=kd)
    KM.kanes_equations([RigidBody("BodyD", Dmc, R, m, (I, Dmc))], [(Dmc, -m * g * Y.z)])
    udot = (KM.mass_matrix.LUsolve(KM.forcing)).subs(KM.kindiffdict())
    u_of_qd = [w_R_N_qd.dot(uv) for uv in L]  # kd: u_i = ω(q̇)·L_i
    return udot, u_of_qd, (q1, q2, q3), (u1, u2, u3)


def test_rolling_disc_kane():
    """A thin disc rolling without slip on a horizontal plane (3-1-2 angles q1, q2, q3).

    Reference: ``KanesMethod`` as in sympy's ``test_kane.py::test_rolling_disc``, whose
    generalized speeds are the disc's angular velocity in the lean frame,
    ``u_i = ω·L_i``; its result is
    ``u̇ = [(6u2u3r - u3²r tan q2 + 4g sin q2)/(5r), -2u1u3/3, u1(-2u2 + u3 tan q2)]``.

    Ours: coordinates ``x, y`` (contact point) and the three angles; the Lagrangian
    ``T - V`` with ``T`` from mechanics' ``RigidBody.kinetic_energy`` of the disc whose
    centre is ``(x, y, 0) + r L.z``, ``V = m g r cos q2``; the two rolling constraints
    (velocity of the disc's material contact point, N.x and N.y components: non-holonomic,
    linear in velocities) under ``nonholonomic="dalembert"``. Our ``q̈`` from the
    mass-matrix form is mapped to ``u̇ = ∂u/∂q q̇ + ∂u/∂q̇ q̈`` and compared with Kane's
    ``u̇`` and with the closed form at 6 random points (parameters, angles, angle rates;
    ``ẋ, ẏ`` set by the constraints), with 30-digit arithmetic, to 1e-12.
    """
    r, m, g = S.parameters("r m g")
    udot_kane, u_of_qd, (q1t, q2t, q3t), (u1t, u2t, u3t) = _rolling_disc_kane(r, m, g)

    # our declaration of the same disc
    xt, yt = dynamicsymbols("x y")
    N = ReferenceFrame("N")
    Y = N.orientnew("Y", "Axis", [q1t, N.z])
    L = Y.orientnew("L", "Axis", [q2t, Y.x])
    R = L.orientnew("R", "Axis", [q3t, L.y])
    O = Point("O")
    O.set_vel(N, 0)
    Dmc = O.locatenew("Dmc", xt * N.x + yt * N.y + r * L.z)
    Dmc.set_vel(N, Dmc.pos_from(O).dt(N))
    disc = RigidBody("D", Dmc, R, m, (inertia(L, m / 4 * r**2, m / 2 * r**2, m / 4 * r**2),
                                      Dmc))
    contact = Dmc.locatenew("P", -r * L.z)
    contact.v2pt_theory(Dmc, N, R)
    v_contact = contact.vel(N)
    assert sp.simplify(v_contact.dot(N.z)) == 0  # the vertical part is holonomic, built in
    T = S.to_jet_form(disc.kinetic_energy(N))
    V = S.to_jet_form(m * g * Dmc.pos_from(O).dot(N.z))
    x, y, q1, q2, q3 = S.coordinates("x y q1 q2 q3")
    p = Problem(Action([x, y, q1, q2, q3], lagrangian=T - V),
                [Constraint(S.to_jet_form(v_contact.dot(N.x)), name="roll_x"),
                 Constraint(S.to_jet_form(v_contact.dot(N.y)), name="roll_y")],
                parameters=[r, m, g], nonholonomic="dalembert")
    el = euler_lagrange(p)
    assert len(el.nonholonomic_multipliers) == 2

    # u(q, q̇) and u̇(q, q̇, q̈) in jet form
    angles = (q1, q2, q3)
    u_jet = [S.to_jet_form(e) for e in u_of_qd]
    udot_ours = [sum(sp.diff(u, q) * S.dot(q) + sp.diff(u, S.dot(q)) * S.dot(q, 2)
                     for q in angles) for u in u_jet]
    u1, u2, u3 = _jet("u1", "u2", "u3")
    udot_kane = [S.to_jet_form(e) for e in udot_kane]
    udot_closed = [(6 * u2 * u3 * r - u3**2 * r * sp.tan(q2) + 4 * g * sp.sin(q2)) / (5 * r),
                   -2 * u1 * u3 / 3,
                   u1 * (-2 * u2 + u3 * sp.tan(q2))]

    rng = random.Random(27631)
    for _ in range(6):
        pt = {s: sp.Float(rng.uniform(0.5, 2.0), DIGITS) for s in (r, m, g)}
        pt |= {q: sp.Float(rng.uniform(-1.2, 1.2), DIGITS) for q in (x, y, q1, q2, q3)}
        pt |= {S.dot(q): sp.Float(rng.uniform(-2.0, 2.0), DIGITS) for q in angles}
        # ẋ, ẏ from the rolling constraints (linear in them, solved exactly)
        cons = [c.expr.xreplace(pt) for c in p.constraints]
        vxy = sp.solve(cons, [S.dot(x), S.dot(y)], dict=True)[0]
        pt |= {k: sp.Float(v, DIGITS) for k, v in vxy.items()}
        for c in p.constraints:
            assert abs(c.expr.xreplace(pt)) < TOL
        sol = _solve_numeric(el, pt)
        at = pt | sol
        uval = {u: ue.xreplace(pt).evalf(DIGITS) for u, ue in zip((u1, u2, u3), u_jet)}
        for ours_e, kane_e, closed_e in zip(udot_ours, udot_kane, udot_closed):
            ours_v = ours_e.xreplace(at).evalf(DIGITS)
            kane_v = kane_e.xreplace(pt | uval).evalf(DIGITS)
            closed_v = closed_e.xreplace(pt | uval).evalf(DIGITS)
            scale = max(1.0, abs(kane_v))
            assert abs(ours_v - kane_v) <= TOL * scale, (ours_v, kane_v)
            assert abs(ours_v - closed_v) <= TOL * scale, (ours_v, closed_v)


# -- the exp(θt)-weighted oscillator ----------------------------------------------------------
def test_weighted_oscillator():
    """``L = exp(θt)(½ m ẋ² - ½ k x²)`` gives ``m ẍ + θ m ẋ + k x = 0``.

    Reference: ``LagrangesMethod`` on the weighted Lagrangian, whose ``eom`` is
    ``exp(θt)(m ẍ + θ m ẋ + k x)``. Ours declares the weight ``ϖ = exp(θt)`` on the
    kinetic term and ``F = -ϖ k x²/2``, and divides by ``ϖ`` analytically (design.md).
    Compared symbolically: our equation against ``exp(-θt)·eom``, against the closed
    form, the rate ``ϖ̇/ϖ = θ``, no exponential left in the equation, and the
    mass-matrix form ``m ẍ = -θ m ẋ - k x``.
    """
    m, k, theta = S.parameters("m k theta")
    w = sp.exp(theta * S.t)
    xt = dynamicsymbols("x")
    xd = xt.diff(S.t)
    lm = LagrangesMethod(w * (m * xd**2 / 2 - k * xt**2 / 2), [xt])
    lm.form_lagranges_equations()

    (x,) = S.coordinates("x")
    p = Problem(Action([x], masses=m, weight=w, lagrangian=-w * k * x**2 / 2),
                parameters=[m, k, theta])
    el = euler_lagrange(p)
    (ours,) = el.equations_of_motion()
    theirs = S.to_jet_form(lm.eom[0])
    assert _zero(ours - sp.exp(-theta * S.t) * theirs)
    assert sp.expand(ours - (m * S.dot(x, 2) + theta * m * S.dot(x) + k * x)) == 0
    assert not ours.has(sp.exp)
    assert sp.simplify(el.rate - theta) == 0
    assert el.mass_matrix.to_matrix() == sp.Matrix([[m]])
    assert sp.expand(el.forcing[0] + theta * m * S.dot(x) + k * x) == 0


def test_weighted_nonminimal_pendulum():
    """The pendulum of :func:`test_nonminimal_pendulum` under ``ϖ = exp(θt)``.

    Reference: ``LagrangesMethod`` on ``exp(θt)(½ m |q̇|² + m g q1)`` with the rod
    constraint. Its multiplier ``λ`` grows like ``exp(θt)``; ours is ``δ = λ exp(-θt)``
    (design.md; the paper's ``δ_j = e^{-θt} λ_j``). Compared symbolically: our equations
    against ``exp(-θt)·eom`` with ``λ = exp(θt) δ``, and ``δ`` (from eq. 10) against
    ``exp(-θt)·solve_multipliers()``.
    """
    m, g, L, theta = S.parameters("m g L theta")
    w = sp.exp(theta * S.t)
    q1t, q2t = dynamicsymbols("q1 q2")
    q1td, q2td = q1t.diff(S.t), q2t.diff(S.t)
    lm = LagrangesMethod(w * (m * (q1td**2 + q2td**2) / 2 + m * g * q1t), [q1t, q2t],
                         hol_coneqs=[q1t**2 + q2t**2 - L**2])
    lm.form_lagranges_equations()

    q1, q2 = S.coordinates("q1 q2")
    p = Problem(Action([q1, q2], masses=m, weight=w, lagrangian=w * m * g * q1),
                [Constraint(q1**2 + q2**2 - L**2, name="rod")], parameters=[m, g, L, theta])
    el = euler_lagrange(p)
    (delta,) = el.multipliers
    lam_t = S.to_jet_form(lm.lam_vec[0])
    for ours_e, theirs_e in zip(el.equations_of_motion(), lm.eom):
        theirs_e = S.to_jet_form(theirs_e).xreplace({lam_t: w * delta})
        assert _zero(ours_e - sp.exp(-theta * S.t) * theirs_e)
    me = multiplier_equation(p)
    delta_ours = me.b()[0] / me.A()[0, 0]
    lam_theirs = S.to_jet_form(lm.solve_multipliers(sol_type="Matrix")[0])
    assert _zero(delta_ours - sp.exp(-theta * S.t) * lam_theirs)
    assert not delta_ours.has(sp.exp)
