"""Proof-backed figures: each figure declares the claims it relies on and is drawn only after
those claims pass their (quick) checks. Every figure is written with a JSON sidecar holding the
backing claims (statuses, max errors), the data series, the seeds and the package versions, so
``--from-json`` can re-render it without recomputing.

A figure module (``softnce_theory/plots/<name>.py``) defines one :class:`Figure` via
:func:`figure`:

* ``compute(quick, seed) -> dict``: JSON-able data series (no NaN/Inf; encode them as ``None``).
  Curves come from verified closed forms, markers from independent numerics (autograd or Monte
  Carlo). It runs with torch on one thread (:func:`single_thread`) and must be deterministic
  given ``(quick, seed)``; measured wall times, if any, go under ``data["timing"]``.
* ``render(data, fig)``: draws onto a matplotlib ``Figure`` from the data dict alone.

:func:`make` gates on the claims (:func:`gate`, a refusal raises :class:`GateError`), computes,
and draws the data after a JSON round trip, so the output is byte-identical to a later
``--from-json`` re-render. PNG/PDF/SVG carry no timestamps.

File policy (``docs/cli.md``):

* **Atomic, all or nothing.** Every format and the sidecar are first written to temporary files
  next to their targets; only when all are complete are they ``os.replace``-d into place (and
  then the figure's files in formats not drawn this time are removed: they would not match the
  new sidecar). Any failure (compute, bad data, NaN, render, disk) leaves the previous files
  untouched and no temporary behind.
* **Refusal removes.** A figure whose backing claim is refuted or errors is refused and the
  files it owns in the output directory are removed (a figure must not outlive its proof),
  except the ``--from-json`` input itself, which is never deleted.
* **``--from-json`` trusts only the data.** The sidecar is parsed strictly (NaN/Infinity are
  refused), and the backing claims are re-checked through the engine with the sidecar's seed;
  its own ``"claims"`` list is replaced by the fresh evidence, never believed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Okabe–Ito colour-blind-safe palette
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
#: output formats ``softnce plots --format`` accepts
FORMATS = ("png", "pdf", "svg")
DPI = 120
#: the ``schema`` value of every sidecar (``softnce_theory/schemas/figure-1.json``)
SCHEMA = "softnce-theory/figure/1"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    claims: tuple[str, ...]
    compute: Callable[[bool, int], dict[str, Any]]
    render: Callable[[dict[str, Any], Any], None]
    caption: str = ""
    size: tuple[float, float] = (9.0, 3.6)


_REGISTRY: dict[str, Figure] = {}


def figure(fig: Figure) -> Figure:
    _REGISTRY[fig.name] = fig
    return fig


def figure_names() -> tuple[str, ...]:
    """Every figure the registered families declare, in registry (gallery) order."""
    from softnce_theory.registry import registry

    return tuple(registry().figures())


def get_figure(name: str) -> Figure:
    """The figure ``name``: a declared reference is a module that registers it with
    :func:`figure` on import, or the :class:`Figure` itself."""
    from softnce_theory.registry import registry, resolve

    if name not in _REGISTRY:
        declared = registry().figures()
        if name not in declared:
            raise ValueError(f"figure must be one of {tuple(declared)}, got {name!r}")
        obj = resolve(declared[name])
        if isinstance(obj, Figure):
            _REGISTRY[name] = obj
        if name not in _REGISTRY:
            raise ValueError(f"figure {name!r}: its declaration {declared[name]!r} defines none")
    return _REGISTRY[name]


class GateError(RuntimeError):
    """A figure's backing claim did not pass: the figure is refused."""


def _registries() -> tuple[Any, Any]:
    """The precise and production leg registries (built once per :func:`gate` call, not cached
    across calls, so a leg patched in between is seen)."""
    from softnce_theory.engine import precise_registry, production_registry

    return precise_registry(), production_registry()


def gate(
    fig: Figure, seed: int, results_cache: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run the figure's backing claims (quick legs). Raise :class:`GateError` unless each is
    ``proved`` or ``checked``. Returns the evidence summaries for the sidecar."""
    from softnce_theory.derivations import CheckConfig
    from softnce_theory.engine import check_claim, get_claim

    cfg = CheckConfig(seed=seed, quick=True)
    evidence = []
    regs: tuple[Any, Any] | None = None
    for cid in fig.claims:
        if results_cache is not None and cid in results_cache:
            res = results_cache[cid]
        else:
            if regs is None:
                regs = _registries()
            res = check_claim(get_claim(cid), cfg, *regs)
            if results_cache is not None:
                results_cache[cid] = res
        summary = {
            "id": cid,
            "status": res.status,
            "legs": {
                leg.leg: {
                    "outcome": leg.outcome,
                    "n_points": leg.n_points,
                    "max_abs_err": _finite(leg.max_abs_err),
                    "max_rel_err": _finite(leg.max_rel_err),
                }
                for leg in res.legs
            },
        }
        evidence.append(summary)
        if res.status not in ("proved", "checked"):
            why = res.counterexample or "; ".join(
                f"{x.leg}: {x.detail}" for x in res.legs if x.outcome in ("fail", "error")
            )
            raise GateError(
                f"figure {fig.name!r} refused: backing claim {cid} is {res.status} ({why})"
            )
    return evidence


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread (bitwise-reproducible reductions, no oversubscription on
    a shared machine), restoring the previous setting afterwards."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def versions() -> dict[str, str]:
    import matplotlib
    import mpmath
    import numpy
    import sympy
    import torch

    from softnce_theory import __version__

    return {
        "softnce_theory": __version__,
        "torch": torch.__version__,
        "sympy": sympy.__version__,
        "mpmath": mpmath.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
    }


def _outputs(out_dir: Path, name: str) -> list[Path]:
    """Every file a figure can own in ``out_dir`` (all formats and the sidecar)."""
    return [out_dir / f"{name}.{fmt}" for fmt in FORMATS] + [out_dir / f"{name}.json"]


def _remove_stale(paths: list[Path]) -> None:
    for p in paths:
        if p.is_symlink() or p.is_file():
            p.unlink()


def _finite(x: Any) -> Any:
    """Non-finite floats of the claim evidence become strings (the sidecar is strict JSON)."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def to_json(obj: Any) -> str:
    """Strict, deterministic JSON (sorted keys; NaN/Inf refused: a figure must encode them)."""
    return json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n"


FOOTER_PT = 6.5


def _footer(text: str, size: tuple[float, float]) -> tuple[str, float]:
    """Wrap the footer to the figure width (deterministically, by character count) and return
    it with the fraction of the figure height it needs."""
    import textwrap

    width_chars = max(40, int(size[0] * 72 / (0.56 * FOOTER_PT)))
    lines = textwrap.wrap(text, width=width_chars)
    height_in = len(lines) * FOOTER_PT * 1.3 / 72 + 0.06
    return "\n".join(lines), min(0.4, height_in / size[1])


def _png_bytes(mfig: Any) -> bytes:
    """Opaque RGB PNG (the figure background is white), optimised, without metadata chunks:
    deterministic and about a quarter smaller than matplotlib's RGBA output."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    mfig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    buf.seek(0)
    out = io.BytesIO()
    with Image.open(buf) as im:
        im.convert("RGB").save(out, format="PNG", optimize=True, dpi=(DPI, DPI))
    return out.getvalue()


def _figure_bytes(mfig: Any, fmt: str) -> bytes:
    import io

    if fmt == "png":
        return _png_bytes(mfig)
    meta: dict[str, Any] = {
        "pdf": {"CreationDate": None, "Producer": None},
        "svg": {"Date": None},
    }.get(fmt, {})
    buf = io.BytesIO()
    mfig.savefig(buf, format=fmt, dpi=DPI, metadata=meta)
    return buf.getvalue()


def _commit(files: list[tuple[Path, bytes]]) -> list[Path]:
    """Write every ``(path, bytes)`` to a temporary next to it, then ``os.replace`` them all:
    nothing is replaced unless every file is complete; on failure no temporary remains."""
    from softnce_theory.numerics.montecarlo.checkpoint import fsync_dir, write_temp

    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            temps.append((write_temp(path, data), path))
        while temps:
            tmp, path = temps[0]
            os.replace(tmp, path)
            temps.pop(0)
    finally:
        for tmp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    for d in {p.parent for p, _ in files}:
        fsync_dir(d)
    return [p for p, _ in files]


def draw(
    fig: Figure,
    data: dict[str, Any],
    sidecar: dict[str, Any],
    out_dir: Path,
    formats: tuple[str, ...],
) -> list[Path]:
    """Render ``data`` with the figure's caption footer and save every format + the sidecar,
    all or nothing (see the module's file policy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    side_text = to_json(sidecar)  # strict JSON first: a NaN fails before any file is touched
    plt.rcParams.update({"svg.hashsalt": "softnce", "pdf.compression": 6, "font.size": 9})
    mfig = plt.figure(figsize=fig.size, layout="constrained")
    try:
        fig.render(data, mfig)
        backing = ", ".join(f"{e['id']} [{e['status']}]" for e in sidecar["claims"])
        footer, bottom = _footer(f"Backed by: {backing}. {fig.caption}", fig.size)
        engine = mfig.get_layout_engine()
        if engine is not None:
            engine.set(rect=(0, bottom, 1, 1 - bottom))  # type: ignore[call-arg]  # footer room
        mfig.text(0.006, 0.008, footer, fontsize=FOOTER_PT, va="bottom", ha="left", color="0.25")
        files = [(out_dir / f"{fig.name}.{fmt}", _figure_bytes(mfig, fmt)) for fmt in formats]
    finally:
        plt.close(mfig)
    files.append((out_dir / f"{fig.name}.json", side_text.encode("utf-8")))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = _commit(files)
    # formats not drawn this time would no longer match the new sidecar: remove them
    _remove_stale([p for p in _outputs(out_dir, fig.name) if p not in written])
    return written


#: a sidecar larger than this is refused unread (real ones are a few kB to a few hundred kB)
MAX_SIDECAR_BYTES = 64 * 2**20


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} (the sidecar must be strict JSON)")


def load_sidecar(path: str | os.PathLike[str], name: str) -> dict[str, Any]:
    """Read a sidecar for ``--from-json`` (``ValueError`` naming the file if it cannot be used):
    strict JSON (no NaN/Infinity), figure ``name``, a ``data`` object and an integer seed. A
    sidecar that records a failing backing claim is refused (:class:`GateError`); one that
    records passing claims is not believed either: :func:`make` re-checks them."""
    where = f"--from-json {path}"
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{where}: cannot read ({exc.strerror or exc})") from exc
    if len(raw) > MAX_SIDECAR_BYTES:
        raise ValueError(f"{where}: larger than {MAX_SIDECAR_BYTES} bytes, not a sidecar")
    try:
        sidecar = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ValueError(f"{where}: JSON nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{where}: not valid strict JSON ({exc})") from exc
    if (
        not isinstance(sidecar, dict)
        or not isinstance(sidecar.get("data"), dict)
        or not isinstance(sidecar.get("claims"), list)
    ):
        raise ValueError(f"{where}: not a figure sidecar (needs a data object and a claims list)")
    schema = sidecar.get("schema", SCHEMA)  # older sidecars carry none: accepted
    if schema != SCHEMA:
        what = schema if isinstance(schema, str) and len(schema) < 80 else type(schema).__name__
        raise ValueError(f"{where}: schema {what!r} is not {SCHEMA!r}")
    if sidecar.get("figure") != name:
        shown = sidecar.get("figure")
        shown = shown if isinstance(shown, str) and len(shown) < 80 else type(shown).__name__
        raise ValueError(f"{where}: holds figure {shown!r}, not {name!r}")
    seed = sidecar.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"{where}: seed must be an integer in [0, 2**63), got {seed!r:.40}")
    bad = [
        e.get("id") if isinstance(e, dict) else e
        for e in sidecar["claims"]
        if not isinstance(e, dict) or e.get("status") not in ("proved", "checked")
    ]
    if bad:
        raise GateError(f"figure {name!r} refused: the sidecar records failing claims {bad}")
    return sidecar


def make(
    name: str,
    out_dir: str | os.PathLike[str],
    formats: tuple[str, ...] = ("png",),
    *,
    quick: bool = False,
    seed: int = 0,
    from_json: str | os.PathLike[str] | None = None,
    results_cache: dict[str, Any] | None = None,
    sidecar: dict[str, Any] | None = None,
) -> list[Path]:
    """Gate, compute (or load) and draw one figure.

    The backing claims are checked first (also for ``from_json``, with the sidecar's seed:
    the sidecar's recorded claims are not trusted). A refused figure's files in ``out_dir``
    are removed, except the ``from_json`` input; any other failure leaves the previous files
    as they were. The data are drawn after a JSON round trip, so a figure drawn now and one
    re-drawn ``--from-json`` are identical. ``sidecar``: the already loaded ``from_json``.
    """
    from softnce_theory._extras import require

    require("softnce plots", "matplotlib", "sympy", "mpmath")
    fig = get_figure(name)
    out = Path(out_dir)
    if from_json is not None:
        if sidecar is None:
            sidecar = load_sidecar(from_json, fig.name)
        evidence = _gate_or_remove(fig, sidecar["seed"], results_cache, out, keep=from_json)
        fresh = json.loads(to_json(dict(sidecar, schema=SCHEMA, claims=evidence)))
        return draw(fig, fresh["data"], fresh, out, formats)
    evidence = _gate_or_remove(fig, seed, results_cache, out, keep=None)
    with single_thread():
        data = fig.compute(quick, seed)
    doc = {
        "schema": SCHEMA,
        "figure": fig.name,
        "title": fig.title,
        "caption": fig.caption,
        "claims": evidence,
        "seed": seed,
        "quick": quick,
        "versions": versions(),
        "data": data,
    }
    doc = json.loads(to_json(doc))
    return draw(fig, doc["data"], doc, out, formats)


def _gate_or_remove(
    fig: Figure,
    seed: int,
    results_cache: dict[str, Any] | None,
    out: Path,
    keep: str | os.PathLike[str] | None,
) -> list[dict[str, Any]]:
    """:func:`gate`; on a refusal, remove the figure's files in ``out`` (but never ``keep``)."""
    try:
        return gate(fig, seed, results_cache)
    except GateError:
        spare = Path(keep).resolve() if keep is not None else None
        _remove_stale([p for p in _outputs(out, fig.name) if p.resolve() != spare])
        raise
