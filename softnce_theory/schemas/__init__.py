"""JSON Schemas (draft 2020-12) of every machine-readable output of ``softnce``.

Each output carries its schema id as a top-level ``"schema"`` key,
``"softnce-theory/<kind>/<version>"``; the schema files ship with the package
(``softnce_theory/schemas/<kind>-<version>.json``)::

    from softnce_theory import schemas

    schemas.validate(json.loads(text))      # ValueError naming the first violation
    schemas.load("mc")                      # the newest mc schema, as a dict

A version changes when a key is removed, renamed or changes meaning or type; added keys do not
change it (the schemas allow extra keys). :func:`validate` needs the ``jsonschema`` package
(``pip install jsonschema``); :func:`load` needs nothing. See ``docs/cli.md``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

#: every schema: the id an output carries as its ``"schema"`` -> what prints it
SCHEMAS: dict[str, str] = {
    "softnce-theory/claims/2": "softnce verify --json; claims.json of --report DIR",
    "softnce-theory/catalogue/1": "softnce claims --json",
    "softnce-theory/mc/1": "softnce mc --json; the file of --output",
    "softnce-theory/audit/1": "softnce audit --json (mode 'properties' or 'distributed')",
    "softnce-theory/bench/1": "softnce bench --json FILE (mode 'compare', 'roofline', ...)",
    "softnce-theory/figure/1": "the JSON sidecar of every figure of softnce plots",
}
#: the ids the commands of this package write themselves (the others are defined next to the
#: code that builds them: ``engine._report``, ``testing.core``, ``plots._core``, ``bench.losses``)
CATALOGUE = "softnce-theory/catalogue/1"
MC = "softnce-theory/mc/1"

_PREFIX = "softnce-theory/"


def _resolve(name: str) -> str:
    """The full id of ``name``: a full id, or a bare kind (its newest version)."""
    if name in SCHEMAS:
        return name
    versions = [(int(sid.rsplit("/", 1)[1]), sid) for sid in SCHEMAS if sid.split("/")[1] == name]
    if not versions:
        kinds = sorted({sid.split("/")[1] for sid in SCHEMAS})
        raise ValueError(f"schema must be one of {sorted(SCHEMAS)} or a kind {kinds}, got {name!r}")
    return max(versions)[1]


def filename(name: str) -> str:
    """The file of schema ``name`` in this package: ``<kind>-<version>.json``."""
    _, kind, version = _resolve(name).split("/")
    return f"{kind}-{version}.json"


def load(name: str) -> dict[str, Any]:
    """The JSON Schema of ``name`` (``"softnce-theory/mc/1"``, or ``"mc"`` for the newest)."""
    text = resources.files(__name__).joinpath(filename(name)).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate(obj: Any, name: str | None = None) -> None:
    """Check ``obj`` (a parsed output) against the schema its ``"schema"`` key names (or
    ``name``). Raises ``ValueError`` naming the schema, the path and the first violation;
    ``ModuleNotFoundError`` if the ``jsonschema`` package is not installed."""
    try:
        import jsonschema
    except ImportError:
        raise ModuleNotFoundError(
            "softnce_theory.schemas.validate needs the 'jsonschema' package "
            "(pip install jsonschema)",
            name="jsonschema",
        ) from None
    if name is None:
        sid = obj.get("schema") if isinstance(obj, dict) else None
        if not isinstance(sid, str) or not sid.startswith(_PREFIX):
            raise ValueError(
                "not a softnce-theory output: needs a top-level 'schema' key naming one of "
                f"{sorted(SCHEMAS)}"
            )
        name = sid
    schema = load(name)
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        msg = " ".join(error.message.split())
        msg = msg if len(msg) <= 300 else msg[:297] + "..."
        raise ValueError(f"{_resolve(name)}: at {where}: {msg}")


__all__ = ["CATALOGUE", "MC", "SCHEMAS", "filename", "load", "validate"]
