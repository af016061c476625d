"""Roles of symbols: what each symbol of a problem or a derived system *is*.

Every symbol that a problem declares or a derivation creates gets a :class:`Role` where
it is born: a coordinate (and its time derivatives: velocity, acceleration, ...), an
external signal, a parameter, a mass, the rate ``ϖ̇/ϖ`` of the time weight, the speed
``c`` of a non-holonomic neuron (eq. 18-19), or the multiplier of a named constraint
(``λ``, ``δ = λ/ϖ`` for holonomic constraints, eq. 8-10; ``μ``, ``ν`` for
non-holonomic ones, eq. 20). Downstream code asks the :class:`RoleMap` for a role; it
never parses a name to learn one, so a user's parameter called ``delta_G3`` or
``mu_reg`` stays a parameter.

The multipliers' names are generated from the constraint names
(:func:`multiplier_name`); a declared name equal to one of them is refused when the
problem is declared (:func:`generated_names`).

Examples
--------
>>> import sympy as sp
>>> q, lam = sp.Symbol("q"), sp.Symbol("lambda_G1")
>>> roles = RoleMap({q: Role(RoleKind.COORDINATE), lam: Role(RoleKind.MULTIPLIER, of="G1")})
>>> roles[lam].of, roles.multiplier_of("G1")
('G1', lambda_G1)
>>> [str(s) for s in roles.symbols(RoleKind.COORDINATE)]
['q']
>>> multiplier_name("G3", holonomic=True, weighted=True)
'delta_G3'
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import sympy as sp

from cognitive_action.declare.symbols import base, order

__all__ = ["Role", "RoleKind", "RoleMap", "MULTIPLIER_KINDS", "generated_names",
           "multiplier_name"]


class RoleKind(str, enum.Enum):
    """The kinds of symbols.

    ``COORDINATE`` covers the coordinate's whole jet: the role's ``order`` tells the
    velocity (1), the acceleration (2) and higher derivatives apart. The same holds for
    signals and multiplier states.
    """

    COORDINATE = "coordinate"
    SIGNAL = "signal"
    PARAMETER = "parameter"
    MASS = "mass"
    RATE = "rate"
    SPEED = "speed"
    MULTIPLIER = "multiplier"
    NONHOLONOMIC_MULTIPLIER = "nonholonomic multiplier"

    def __str__(self) -> str:
        return self.value


#: The kinds that are multipliers of constraints.
MULTIPLIER_KINDS = frozenset({RoleKind.MULTIPLIER, RoleKind.NONHOLONOMIC_MULTIPLIER})
#: Constant kinds: parameters and their refinements.
CONSTANT_KINDS = frozenset({RoleKind.PARAMETER, RoleKind.MASS, RoleKind.RATE, RoleKind.SPEED})

_ORDER_WORDS = {1: "velocity", 2: "acceleration"}


@dataclass(frozen=True)
class Role:
    """The role of one symbol.

    Parameters
    ----------
    kind
        A :class:`RoleKind`.
    of
        What the role refers to: the constraint name for a multiplier, the undifferentiated
        symbol for a time derivative (``q`` for ``q̇``), the coordinates a mass weighs.
    order
        Order of the time derivative the symbol stands for (0 for the quantity itself).
    """

    kind: RoleKind
    of: object = None
    order: int = 0

    @property
    def is_multiplier(self) -> bool:
        """Whether the symbol is a constraint multiplier (or one of its derivatives)."""
        return self.kind in MULTIPLIER_KINDS

    def describe(self) -> str:
        """A phrase for messages: ``"velocity of x1"``, ``"multiplier of G3"``.

        >>> Role(RoleKind.COORDINATE, of=sp.Symbol("x1"), order=1).describe()
        'velocity of x1'
        >>> Role(RoleKind.MULTIPLIER, of="G3").describe()
        'multiplier of G3'
        """
        if self.order:
            what = _ORDER_WORDS.get(self.order, f"time derivative of order {self.order}") \
                if self.kind == RoleKind.COORDINATE else f"time derivative of order {self.order}"
            return f"{what} of {self.of}"
        if self.is_multiplier:
            return f"{self.kind} of {self.of}"
        return str(self.kind)


class RoleMap(Mapping):
    """An immutable map ``symbol → Role`` in the order symbols were born.

    Time derivatives are resolved on lookup: ``q̇`` (the jet symbol ``q_dot``, see
    :mod:`cognitive_action.declare.symbols`) has the role of ``q`` at order 1, so a map
    stores one entry per declared quantity however many derivatives appear.
    Iteration and ``len`` cover the stored entries.

    Parameters
    ----------
    roles
        ``{symbol: Role}``.

    Examples
    --------
    >>> x = sp.Symbol("x", real=True)
    >>> RoleMap({x: Role(RoleKind.COORDINATE)})[sp.Symbol("x_ddot", real=True)].describe()
    'acceleration of x'
    """

    __slots__ = ("_roles", "_by_name")

    def __init__(self, roles: Mapping[sp.Symbol, Role] | Iterable[tuple[sp.Symbol, Role]] = ()
                 ) -> None:
        self._roles: dict[sp.Symbol, Role] = dict(roles)
        self._by_name = {s.name: s for s in self._roles}

    def __getitem__(self, symbol: sp.Symbol) -> Role:
        hit = self._roles.get(symbol)
        if hit is not None:
            return hit
        k = order(symbol) if isinstance(symbol, sp.Symbol) else 0
        if k:
            root = self._roles.get(base(symbol))
            if root is None:  # base() drops assumptions: match by name
                root_symbol = self._by_name.get(base(symbol).name)
                root = self._roles.get(root_symbol) if root_symbol is not None else None
            if root is not None and root.order == 0:
                of = root.of if root.is_multiplier else base(symbol)
                return Role(root.kind, of=of, order=k)
        raise KeyError(symbol)

    def get(self, symbol: sp.Basic, default: object = None) -> object:
        try:
            return self[symbol]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[sp.Symbol]:
        return iter(self._roles)

    def __len__(self) -> int:
        return len(self._roles)

    def __repr__(self) -> str:
        kinds: dict[str, int] = {}
        for r in self._roles.values():
            kinds[str(r.kind)] = kinds.get(str(r.kind), 0) + 1
        return "RoleMap(" + ", ".join(f"{n} {k}" for k, n in kinds.items()) + ")"

    # -- queries -------------------------------------------------------------------------
    def kind(self, symbol: sp.Basic) -> RoleKind | None:
        """The kind of ``symbol``, or None for a symbol this map does not know."""
        r = self.get(symbol)
        return r.kind if r is not None else None

    def symbols(self, *kinds: RoleKind) -> tuple[sp.Symbol, ...]:
        """The stored symbols of the given kinds (every kind if none given)."""
        wanted = set(kinds)
        return tuple(s for s, r in self._roles.items() if not wanted or r.kind in wanted)

    def named(self, name: str) -> sp.Symbol | None:
        """The symbol called ``name``, or None."""
        return self._by_name.get(name)

    def multiplier_of(self, constraint: str) -> sp.Symbol:
        """The multiplier of the constraint named ``constraint``.

        Raises
        ------
        KeyError
            If no constraint of that name has a multiplier here.
        """
        for s, r in self._roles.items():
            if r.is_multiplier and r.order == 0 and r.of == constraint:
                return s
        raise KeyError(f"no multiplier of a constraint named {constraint!r}")

    def is_multiplier(self, symbol: sp.Basic) -> bool:
        """Whether ``symbol`` is a multiplier or one of its time derivatives."""
        r = self.get(symbol)
        return r is not None and r.is_multiplier

    def masses_of(self, coordinates: Iterable[sp.Symbol]) -> tuple[sp.Symbol, ...]:
        """The mass symbols that weigh any of ``coordinates``."""
        cs = set(coordinates)
        return tuple(s for s, r in self._roles.items()
                     if r.kind == RoleKind.MASS and cs & set(r.of or ()))

    # -- building ------------------------------------------------------------------------
    def merged(self, other: Mapping[sp.Symbol, Role]) -> RoleMap:
        """A new map with ``other``'s roles added (``other`` wins on a shared symbol)."""
        return RoleMap({**self._roles, **dict(other)})


_PREFIXES = {(True, False): "lambda", (True, True): "delta",
             (False, False): "mu", (False, True): "nu"}


def multiplier_name(constraint: str, *, holonomic: bool, weighted: bool) -> str:
    """The name the derivation gives the multiplier of ``constraint``.

    ``λ`` (``lambda_``) for a holonomic constraint, ``δ = λ/ϖ`` (``delta_``) when the
    action carries a time weight ``ϖ ≠ 1`` (the paper's ``δ_j = e^{-θt} λ_j``); ``μ``
    (``mu_``) and ``ν`` (``nu_``) for non-holonomic ones (eq. 20).

    >>> multiplier_name("G2", holonomic=False, weighted=False)
    'mu_G2'
    """
    return f"{_PREFIXES[(holonomic, weighted)]}_{constraint}"


def generated_names(constraints: Iterable[str]) -> dict[str, str]:
    """Every multiplier name a derivation may generate for these constraint names:
    ``{name: constraint}``.

    >>> sorted(generated_names(["G3"]))
    ['delta_G3', 'lambda_G3', 'mu_G3', 'nu_G3']
    """
    return {f"{p}_{c}": c for c in constraints for p in _PREFIXES.values()}
