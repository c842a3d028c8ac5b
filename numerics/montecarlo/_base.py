"""The scenario interface: a frozen config dataclass that knows how to simulate and predict.

A scenario config is a frozen dataclass (hashable, JSON-able) subclassing :class:`ScenarioConfig`.
For a given ``K`` it

* ``prepare(k, device)``: builds the tensors a chunk needs (cached constants computed once);
* ``simulate(prep, k, n, gen)``: draws ``n`` independent trials with the chunk's generator and
  returns ``y`` (n, d) -- the measured quantities per trial (e.g. ``L_K - L_inf`` and the
  gradient-bias components) -- and ``c`` (n, d, m) -- control variates with **exactly known mean
  zero** (already centred), in float64 on the device;
* ``predictions(k)``: the theory's first- and second-order predictions for each output
  (``None`` where the theory gives none).

Registered scenarios are listed in :data:`SCENARIOS` (name -> class).
"""

from __future__ import annotations

import abc
import dataclasses
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

SCENARIOS: dict[str, type[ScenarioConfig]] = {}

_CACHE: dict[tuple[Any, str], Any] = {}

T = TypeVar("T", bound="type[ScenarioConfig]")


def register(cls: T) -> T:
    SCENARIOS[cls.name] = cls
    return cls


@dataclass(frozen=True)
class Prediction:
    """Theory's prediction for one output at one K: first and second order (None if unavailable)."""

    first: float | None
    second: float | None = None


class ScenarioConfig(abc.ABC):
    """Base class of the scenario configs (subclasses are frozen dataclasses)."""

    name: ClassVar[str]
    #: K grid used when the caller gives none
    default_ks: ClassVar[tuple[int, ...]] = (1, 10, 100, 1000)
    #: "bias" (outputs are E[.]_K - limit) or "value" (outputs are expectations themselves)
    quantity: ClassVar[str] = "bias"
    #: where the printed predictions come from
    prediction_source: ClassVar[str] = ""
    #: what K counts in this scenario
    k_meaning: ClassVar[str] = "number of negatives"

    # -- to implement -------------------------------------------------------------------------
    @abc.abstractmethod
    def validate(self) -> None:
        """Raise ``ValueError`` naming the field and the rule for a bad configuration."""

    @abc.abstractmethod
    def output_names(self) -> tuple[str, ...]: ...

    @abc.abstractmethod
    def n_controls(self) -> int: ...

    @abc.abstractmethod
    def trial_cost(self, k: int) -> int:
        """Approximate number of float64 elements one trial holds (drives the chunk size)."""

    @abc.abstractmethod
    def prepare(self, k: int, device: torch.device) -> Any: ...

    @abc.abstractmethod
    def simulate(
        self, prep: Any, k: int, n: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    @abc.abstractmethod
    def predictions(self, k: int) -> list[Prediction]: ...

    def constants(self) -> dict[str, Any]:
        """JSON-able scenario constants (limits, divergences, ...)."""
        return {}

    def extras(self, k: int, value: np.ndarray, se: np.ndarray) -> dict[str, float]:
        """Derived per-K numbers for the report (e.g. the MI estimate and log K)."""
        return {}

    def min_k(self) -> int:
        return 1

    # -- shared helpers -----------------------------------------------------------------------
    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        """Memoise an expensive constant (mpmath) on (config, key)."""
        ck = (self, key)
        if ck not in _CACHE:
            _CACHE[ck] = fn()
        return _CACHE[ck]

    def to_json(self) -> dict[str, Any]:
        return _jsonify(dataclasses.asdict(self))  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ScenarioConfig:
        """Build a config from a JSON object (lists become tuples). Unknown keys, and values of
        the wrong JSON type for their field (``true`` for an integer, ``{}`` for a list of
        numbers, ...), are refused with a ``ValueError`` naming the parameter."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        bad = sorted(set(obj) - names)
        if bad:
            raise ValueError(f"{cls.name}: unknown parameter(s) {bad}; known: {sorted(names)}")
        hints = typing.get_type_hints(cls)
        for key, value in obj.items():
            tp = hints.get(key)
            if tp is not None and not _conforms(value, tp):
                raise ValueError(
                    f"{cls.name}: parameter {key!r} must be {_describe(tp)}, got {_brief(value)}"
                )
        try:
            cfg = cls(**{k: _tuplify(v) for k, v in obj.items()})
            cfg.validate()
        except ValueError:
            raise
        except (TypeError, ArithmeticError) as exc:  # a check the field types did not cover
            raise ValueError(
                f"{cls.name}: invalid parameter(s) {sorted(obj)}: {type(exc).__name__}: {exc}"
            ) from exc
        return cfg


def _conforms(value: Any, tp: Any) -> bool:
    """Whether a JSON value fits a field annotation (bool is not a number here)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            float(value)
        except OverflowError:
            return False
        return True
    if tp is str:
        return isinstance(value, str)
    if origin in (types.UnionType, typing.Union):
        return any(_conforms(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        return len(value) == len(args) and all(
            _conforms(v, a) for v, a in zip(value, args, strict=True)
        )
    return True  # an annotation this check does not know: validate() decides


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    simple = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if tp in simple:
        return simple[tp]
    if tp is type(None):
        return "null"
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        inner = _describe(args[0])
        return "a list of " + (
            "numbers" if inner == "a number" else inner.replace("a list", "lists", 1)
        )
    return str(tp)


def _brief(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tuplify(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tuplify(x) for x in v)
    return v


def _jsonify(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonify(x) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        return [_jsonify(x) for x in v]
    return v


def check_distribution(
    name: str, p: Any, size: int | None = None, size_of: str | None = None
) -> np.ndarray:
    """Validate a probability vector (finite, >= 0, sums to 1 within 1e-9); ``size_of`` names
    the parameter whose length ``size`` is, for the message."""
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of probabilities")
    if size is not None and a.size != size:
        same = f" (the length of {size_of})" if size_of else ""
        raise ValueError(f"{name} must have length {size}{same}, got {a.size}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    if abs(a.sum() - 1.0) > 1e-9:
        raise ValueError(f"{name} must sum to 1, got {a.sum()!r}")
    return a


def check_finite_vector(name: str, x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of finite numbers")
    return a
