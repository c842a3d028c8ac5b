"""The family registry: one declared :class:`Family` object per loss family.

Everything in the toolkit that enumerates families reads this registry: the CLI's choices, the
engine's claims and legs, the audit's contracts, the tiled dispatch's kernels, the benchmarks,
the Monte Carlo scenarios and the figure gallery. A family is declared **once**; nothing else
keeps a list.

A declaration refers to its parts by *reference*: either the object itself or a string
``"package.module:attribute"`` (``"package.module"`` for a module), imported only when the part
is needed. The built-in declarations therefore cost no torch, sympy or mpmath import, and
``softnce --help`` stays fast.

Families come from three places, in this order:

1. the built-ins (:data:`BUILTIN`, declared in :mod:`softnce_theory._builtin`);
2. installed packages that declare the entry-point group ``softnce.families`` (each entry point
   resolves to a :class:`Family` or an iterable of them);
3. ``--plugin MODULE[:ATTR]`` on the command line (:func:`load_plugin`): the module's ``FAMILY``
   / ``FAMILIES`` attribute, or ``ATTR``.

A user family is usually declared from a :class:`LossSpec`: the SymPy definition of the
per-sample loss, the torch implementation and its input :class:`~softnce_theory.domain.Domain`,
optionally an mpmath oracle, a claimed closed-form gradient, and claims in the catalogue's
statement-bound form. The engine derives the generic claims from it
(:mod:`softnce_theory.engine.generic`).

This module imports only the standard library and :mod:`softnce_theory.domain`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from softnce_theory.domain import Array, Domain

#: the entry-point group user packages declare their families in
ENTRY_POINT_GROUP = "softnce.families"

#: invariances a :class:`LossSpec` may declare (see :mod:`softnce_theory.engine.generic`)
INVARIANCES: dict[str, str] = {
    "logit_shift": "adding the same constant to every entry of a row leaves that row's loss "
    "unchanged",
    "batch_permutation": "permuting the rows of the batch permutes the per-sample losses alike",
}

Ref = Any  # an object, or "package.module:attr" / "package.module", resolved lazily


def resolve(ref: Ref) -> Any:
    """The object a reference names (strings are imported; anything else is returned)."""
    if not isinstance(ref, str):
        return ref
    mod, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(mod)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class LossSpec:
    r"""A loss declared by its per-sample SymPy definition (the extension API).

    The loss acts on a batch of rows ``x`` of shape ``(B, K)`` (the domain's first
    :class:`~softnce_theory.domain.Array`) and scalar parameters (the domain's
    :class:`~softnce_theory.domain.Param` objects, by name):

    * ``definition(x, **params)``: the per-sample loss as a SymPy expression, where ``x`` is a
      list of ``K`` real SymPy symbols and each parameter a SymPy symbol (positive when its
      interval is ``(0, inf)``). Example (InfoNCE with the positive at index 0):
      ``-x[0] / t + sympy.log(sum(sympy.exp(v / t) for v in x))``.
    * ``torch_fn(x, **params)``: the implementation, returning the ``(B,)`` per-sample losses.
    * ``oracle(row, **params)``: optional; the loss of one row in mpmath (``row`` a list of
      ``mpf``), written independently of the definition. Without it the engine evaluates the
      definition at 50 digits instead, and marks every result that rests on it as **not
      independent**.
    * ``gradient(x, **params)``: optional; a claimed closed form of :math:`\partial \ell /
      \partial x_k` (a list of ``K`` SymPy expressions). The engine checks it against SymPy's
      derivative of the definition, symbolically and at 50 digits.
    * ``claims``: optional :class:`~softnce_theory.derivations.Claim` objects about the
      definition, in the catalogue's statement-bound form; ``precise`` / ``production`` their
      numeric legs (:class:`~softnce_theory.derivations.LegRegistry`).
    * ``invariances``: names from :data:`INVARIANCES` the loss is declared to satisfy.
    * ``sizes``: the row lengths ``K`` the generic claims are checked at.
    """

    definition: Callable[..., Any]
    torch_fn: Ref
    domain: Domain
    oracle: Callable[..., Any] | None = None
    gradient: Callable[..., Sequence[Any]] | None = None
    claims: Ref = ()
    precise: Ref = None
    production: Ref = None
    invariances: tuple[str, ...] = ()
    sizes: tuple[int, ...] = (2, 3, 5)

    @property
    def rows(self) -> Array:
        """The input rows: the domain's first (floating) array, ``(B, K)``."""
        return cast(Array, self.domain.arrays[0])

    def __post_init__(self) -> None:
        if not self.domain.arrays or not isinstance(self.domain.arrays[0], Array):
            raise ValueError("LossSpec.domain must declare the input rows as its first Array")
        if len(self.domain.arrays[0].dims) != 2:
            raise ValueError("LossSpec.domain: the first Array must have dims like ('B', 'K')")
        bad = [i for i in self.invariances if i not in INVARIANCES]
        if bad:
            raise ValueError(f"LossSpec.invariances must be among {sorted(INVARIANCES)}, got {bad}")
        if not self.sizes or any(int(k) < 1 for k in self.sizes):
            raise ValueError(f"LossSpec.sizes must be positive row lengths, got {self.sizes}")


@dataclass(frozen=True)
class Family:
    """One loss family, declared once. Parts are references (see :func:`resolve`).

    Attributes:
        name: the family's name, also its claim-id prefix (``sincere.kl_bound``).
        title: a one-line human title.
        source: the paper (and section/equation) the family comes from.
        claims: a sequence of :class:`~softnce_theory.derivations.Claim`.
        definitions: a sequence of :class:`~softnce_theory.derivations.Definition`.
        definition_legs / precise / production / conformance: the numeric legs
            (:class:`~softnce_theory.derivations.LegRegistry`, keyed by definition or claim id;
            conformance: keyed by check name).
        losses: public loss name -> the function.
        domains: public loss name -> its :class:`~softnce_theory.domain.Domain`.
        tiled: the tiled kernels (keys of the tiled dispatch table) this family owns.
        contracts: the audit contracts (``softnce audit --family``) this family owns.
        distributed: the contracts that also have a multi-process audit.
        scenarios: Monte Carlo scenario name -> its scenario class.
        figures: figure name -> the module that declares it.
        spec: a :class:`LossSpec`, for a family declared from its definition.

    Where a family came from (built-in, an entry point, ``--plugin``) is recorded by the
    :class:`Registry` (:meth:`Registry.origin`), not by the declaration.
    """

    name: str
    title: str
    source: str
    claims: Ref = ()
    definitions: Ref = ()
    definition_legs: Ref = None
    precise: Ref = None
    production: Ref = None
    conformance: Ref = None
    losses: Mapping[str, Ref] = field(default_factory=dict)
    domains: Mapping[str, Ref] = field(default_factory=dict)
    tiled: tuple[str, ...] = ()
    contracts: tuple[str, ...] = ()
    distributed: tuple[str, ...] = ()
    scenarios: Mapping[str, Ref] = field(default_factory=dict)
    figures: Mapping[str, Ref] = field(default_factory=dict)
    spec: LossSpec | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"Family.name must be a lower-case identifier, got {self.name!r}")
        if not self.source:
            raise ValueError(f"Family {self.name}: source must cite the paper (section/eq.)")
        missing = [c for c in self.distributed if c not in self.contracts]
        if missing:
            raise ValueError(f"Family {self.name}: distributed {missing} are not in contracts")

    # -- parts, resolved lazily ------------------------------------------------------------
    def get(self, part: str) -> Any:
        """A part (``claims``, ``precise``, ...) resolved; ``None`` / ``()`` when absent."""
        return resolve(getattr(self, part))

    def all_claims(self) -> list[Any]:
        """The declared claims plus, for a :class:`LossSpec` family, the generic ones."""
        out = list(self.get("claims") or ())
        if self.spec is not None:
            from softnce_theory.engine.generic import derived

            out = list(derived(self).claims) + out + list(resolve(self.spec.claims) or ())
        return out

    def all_definitions(self) -> list[Any]:
        out = list(self.get("definitions") or ())
        if self.spec is not None:
            from softnce_theory.engine.generic import derived

            out += list(derived(self).definitions)
        return out

    def legs(self, part: str) -> list[Any]:
        """The :class:`~softnce_theory.derivations.LegRegistry` objects of one leg kind
        (``definition_legs``, ``precise``, ``production`` or ``conformance``)."""
        out = [self.get(part)]
        if self.spec is not None:
            from softnce_theory.engine.generic import derived

            out.append(getattr(derived(self), part))
            if part in ("precise", "production"):
                out.append(resolve(getattr(self.spec, part)))
        return [r for r in out if r is not None]


class Registry:
    """An ordered collection of :class:`Family` objects with unique names."""

    def __init__(self, families: Iterable[Family] = (), origin: str = "built-in") -> None:
        self._by_name: dict[str, Family] = {}
        self._origin: dict[str, str] = {}
        for f in families:
            self.register(f, origin)

    def register(self, family: Family, origin: str = "runtime") -> Family:
        """Add ``family``; registering the same object again is a no-op, another family of
        the same name is a ``ValueError``."""
        if not isinstance(family, Family):
            raise ValueError(f"family must be a softnce_theory.registry.Family, got {family!r}")
        if family.name in self._by_name:
            if self._by_name[family.name] is family:
                return family
            raise ValueError(
                f"family {family.name!r} is already registered ({self.origin(family.name)}); "
                f"cannot register another one from {origin}"
            )
        self._by_name[family.name] = family
        self._origin[family.name] = origin
        return family

    def origin(self, name: str) -> str:
        """``built-in``, ``entry point NAME (VALUE)``, ``plugin MODULE`` or ``runtime``."""
        self.get(name)
        return self._origin.get(name, "runtime")

    def __iter__(self) -> Any:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def get(self, name: str) -> Family:
        try:
            return self._by_name[name]
        except KeyError:
            raise ValueError(f"family must be one of {self.names()}, got {name!r}") from None

    def select(self, names: Iterable[str] | None = None) -> list[Family]:
        """The named families (all when ``names`` is empty), in registry order."""
        if not names:
            return list(self)
        wanted = list(names)
        for n in wanted:
            self.get(n)  # raises a ValueError naming the choices
        return [f for f in self if f.name in wanted]

    # -- the lists everything else derives -------------------------------------------------
    def contracts(self) -> tuple[str, ...]:
        return tuple(c for f in self for c in f.contracts)

    def distributed(self) -> tuple[str, ...]:
        return tuple(c for f in self for c in f.distributed)

    def tiled(self) -> tuple[str, ...]:
        return tuple(k for f in self for k in f.tiled)

    def scenarios(self) -> dict[str, Ref]:
        return {k: v for f in self for k, v in f.scenarios.items()}

    def figures(self) -> dict[str, Ref]:
        return {k: v for f in self for k, v in f.figures.items()}

    def owner(self, kind: str, name: str) -> Family:
        """The family that declares contract / tiled kernel / scenario / figure ``name``."""
        for f in self:
            if name in getattr(f, kind):
                return f
        raise ValueError(f"no registered family declares {kind} {name!r}")


def _as_families(obj: Any, origin: str) -> list[Family]:
    if isinstance(obj, Family):
        items: list[Any] = [obj]
    elif isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        items = list(obj)
    else:
        raise ValueError(f"{origin}: expected a Family or an iterable of Family, got {obj!r}")
    for f in items:
        if not isinstance(f, Family):
            raise ValueError(f"{origin}: expected a Family, got {f!r}")
    return items


def plugin_families(spec: str) -> list[Family]:
    """The families of ``--plugin MODULE[:ATTR]`` (``FAMILY`` or ``FAMILIES`` by default)."""
    mod_name, _, attr = spec.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"--plugin: cannot import module {mod_name!r} ({exc})") from None
    if attr:
        obj = resolve(spec)
    elif hasattr(mod, "FAMILIES"):
        obj = mod.FAMILIES
    elif hasattr(mod, "FAMILY"):
        obj = mod.FAMILY
    else:
        raise ValueError(f"--plugin: module {mod_name!r} defines neither FAMILY nor FAMILIES")
    return _as_families(obj, f"plugin {spec}")


def entry_point_families() -> tuple[list[tuple[Family, str]], list[str]]:
    """Families declared by installed packages (group :data:`ENTRY_POINT_GROUP`) with their
    origin, and one message per entry point that failed to load (reported, not fatal)."""
    out: list[tuple[Family, str]] = []
    errors: list[str] = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {ep.name} ({ep.value})"
        try:
            out.extend((f, origin) for f in _as_families(ep.load(), origin))
        except Exception as exc:  # a broken plugin must not break the toolkit's own families
            errors.append(f"entry point {ep.name} ({ep.value}): {type(exc).__name__}: {exc}")
    return out, errors


_STATE: dict[str, Any] = {}


def registry() -> Registry:
    """The process-wide registry: built-ins, then installed entry points (loaded once)."""
    reg = _STATE.get("registry")
    if reg is None:
        from softnce_theory._builtin import BUILTIN

        reg = Registry(BUILTIN)
        found, errors = entry_point_families()
        for f, origin in found:
            try:
                reg.register(f, origin)
            except ValueError as exc:
                errors.append(str(exc))
        _STATE["registry"] = reg
        _STATE["errors"] = errors
    return reg


def load_errors() -> list[str]:
    """Entry points that failed to load (see :func:`entry_point_families`)."""
    registry()
    return list(_STATE.get("errors", []))


def load_plugin(spec: str) -> list[Family]:
    """Import ``--plugin MODULE[:ATTR]`` and register its families; returns them."""
    reg = registry()
    fams = plugin_families(spec)
    for f in fams:
        reg.register(f, f"plugin {spec}")
    return fams


@contextlib.contextmanager
def scoped(*families: Family) -> Iterator[Registry]:
    """A temporary process-wide registry: a copy of the current one plus ``families``,
    restored on exit (for tests and notebooks that declare a family for a moment)."""
    saved = dict(_STATE)
    base = registry()
    reg = Registry()
    for f in base:
        reg.register(f, base.origin(f.name))
    for f in families:
        reg.register(f)
    _STATE["registry"] = reg
    try:
        yield reg
    finally:
        _STATE.clear()
        _STATE.update(saved)


def family_names() -> tuple[str, ...]:
    return registry().names()


def get_family(name: str) -> Family:
    return registry().get(name)


__all__ = [
    "ENTRY_POINT_GROUP",
    "INVARIANCES",
    "Family",
    "LossSpec",
    "Registry",
    "entry_point_families",
    "family_names",
    "get_family",
    "load_errors",
    "load_plugin",
    "plugin_families",
    "registry",
    "resolve",
    "scoped",
]
