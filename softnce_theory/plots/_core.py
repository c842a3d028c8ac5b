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

:func:`make` removes every file the figure owns first, gates on the claims (:func:`gate`, a
refusal raises :class:`GateError`), computes, and draws the data after a JSON round trip, so the
output is byte-identical to a later ``--from-json`` re-render. PNG/PDF/SVG carry no timestamps.
"""

from __future__ import annotations

import contextlib
import importlib
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
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

#: figure modules, in gallery order
FIGURES: tuple[str, ...] = (
    "supcon_repulsion",
    "collision_vs_shannon",
    "negatives_bias",
    "soft_limit_gap",
    "infonce_mi_bound",
    "sincere_kl_bound",
    "em_vs_pgd",
    "soft_target_toy",
)


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


def get_figure(name: str) -> Figure:
    if name not in FIGURES:
        raise ValueError(f"figure must be one of {FIGURES}, got {name!r}")
    if name not in _REGISTRY:
        importlib.import_module(f"softnce_theory.plots.{name}")
    return _REGISTRY[name]


class GateError(RuntimeError):
    """A figure's backing claim did not pass: the figure is refused."""


def _registries() -> tuple[Any, Any]:
    """The precise and production leg registries (built once per :func:`gate` call, not cached
    across calls, so a leg patched in between is seen)."""
    from numerics import precise_registry
    from softnce_theory.engine import production_registry

    return precise_registry(), production_registry()


def gate(
    fig: Figure, seed: int, results_cache: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run the figure's backing claims (quick legs). Raise :class:`GateError` unless each is
    ``proved`` or ``checked``. Returns the evidence summaries for the sidecar."""
    from derivations import CheckConfig, get_claim
    from softnce_theory.engine import check_claim

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
        if p.exists():
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


def _save_png(mfig: Any, path: Path) -> None:
    """Opaque RGB PNG (the figure background is white), optimised, without metadata chunks:
    deterministic and about a quarter smaller than matplotlib's RGBA output."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    mfig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    buf.seek(0)
    with Image.open(buf) as im:
        im.convert("RGB").save(path, format="PNG", optimize=True, dpi=(DPI, DPI))


def draw(
    fig: Figure,
    data: dict[str, Any],
    sidecar: dict[str, Any],
    out_dir: Path,
    formats: tuple[str, ...],
) -> list[Path]:
    """Render ``data`` with the figure's caption footer and save every format + the sidecar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "softnce", "pdf.compression": 6, "font.size": 9})
    mfig = plt.figure(figsize=fig.size, layout="constrained")
    fig.render(data, mfig)
    backing = ", ".join(f"{e['id']} [{e['status']}]" for e in sidecar["claims"])
    footer, bottom = _footer(f"Backed by: {backing}. {fig.caption}", fig.size)
    engine = mfig.get_layout_engine()
    if engine is not None:
        engine.set(rect=(0, bottom, 1, 1 - bottom))  # type: ignore[call-arg]  # room for the footer
    mfig.text(0.006, 0.008, footer, fontsize=FOOTER_PT, va="bottom", ha="left", color="0.25")
    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        path = out_dir / f"{fig.name}.{fmt}"
        meta: dict[str, Any] = {
            "pdf": {"CreationDate": None, "Producer": None},
            "svg": {"Date": None},
        }.get(fmt, {})
        tmp = out_dir / f".{fig.name}.{fmt}.tmp"
        if fmt == "png":
            _save_png(mfig, tmp)
        else:
            mfig.savefig(tmp, format=fmt, dpi=DPI, metadata=meta)
        os.replace(tmp, path)
        written.append(path)
    plt.close(mfig)
    side = out_dir / f"{fig.name}.json"
    tmp = out_dir / f".{fig.name}.json.tmp"
    tmp.write_text(to_json(sidecar))
    os.replace(tmp, side)
    written.append(side)
    return written


def load_sidecar(path: str | os.PathLike[str], name: str) -> dict[str, Any]:
    """Read a sidecar for ``--from-json``: it must hold figure ``name`` and record every backing
    claim as proved or checked."""
    try:
        sidecar = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--from-json: cannot read {path}: {exc}") from exc
    if not isinstance(sidecar, dict) or "data" not in sidecar or "claims" not in sidecar:
        raise ValueError(f"--from-json: {path} is not a figure sidecar")
    if sidecar.get("figure") != name:
        raise ValueError(
            f"--from-json: {path} holds figure {sidecar.get('figure')!r}, not {name!r}"
        )
    bad = [e["id"] for e in sidecar["claims"] if e.get("status") not in ("proved", "checked")]
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
) -> list[Path]:
    """Gate, compute (or load) and draw one figure.

    Every file the figure owns in ``out_dir`` (all formats and the sidecar) is removed first, so
    a refused or failed figure leaves nothing stale behind. The data are drawn after a JSON
    round trip, so a figure drawn now and one re-drawn ``--from-json`` are identical.
    """
    fig = get_figure(name)
    out = Path(out_dir)
    if from_json is not None:
        sidecar = load_sidecar(from_json, fig.name)  # read before the old files are removed
        _remove_stale(_outputs(out, fig.name))
        return draw(fig, sidecar["data"], sidecar, out, formats)
    _remove_stale(_outputs(out, fig.name))
    evidence = gate(fig, seed, results_cache)
    with single_thread():
        data = fig.compute(quick, seed)
    sidecar = {
        "schema": "softnce-theory/figure/1",
        "figure": fig.name,
        "title": fig.title,
        "caption": fig.caption,
        "claims": evidence,
        "seed": seed,
        "quick": quick,
        "versions": versions(),
        "data": data,
    }
    sidecar = json.loads(to_json(sidecar))
    try:
        return draw(fig, sidecar["data"], sidecar, out, formats)
    except BaseException:
        _remove_stale(_outputs(out, fig.name))
        raise
