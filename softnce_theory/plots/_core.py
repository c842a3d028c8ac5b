"""Proof-backed figures: each figure declares the claims it relies on and is drawn only after
those claims pass their (quick) checks. Every figure is written with a JSON sidecar holding the
backing claims (statuses, max errors), the data series, the seeds and the package versions, so
``--from-json`` can re-render it without recomputing.

A figure module (``softnce_theory/plots/<name>.py``) defines one :class:`Figure` via
:func:`figure`:

* ``compute(quick, seed) -> dict``: JSON-able data series. Curves come from verified closed forms,
  markers from independent numerics (autograd or Monte Carlo).
* ``render(data, fig)``: draws onto a matplotlib ``Figure`` from the data dict alone.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Okabe–Ito colour-blind-safe palette
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
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


def gate(
    fig: Figure, seed: int, results_cache: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run the figure's backing claims (quick legs). Raise :class:`GateError` unless each is
    ``proved`` or ``checked``. Returns the evidence summaries for the sidecar."""
    from derivations import CheckConfig, get_claim
    from softnce_theory.engine import check_claim

    cfg = CheckConfig(seed=seed, quick=True)
    evidence = []
    for cid in fig.claims:
        if results_cache is not None and cid in results_cache:
            res = results_cache[cid]
        else:
            res = check_claim(get_claim(cid), cfg)
            if results_cache is not None:
                results_cache[cid] = res
        summary = {
            "id": cid,
            "status": res.status,
            "legs": {
                leg.leg: {
                    "outcome": leg.outcome,
                    "n_points": leg.n_points,
                    "max_abs_err": leg.max_abs_err,
                    "max_rel_err": leg.max_rel_err,
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


def _outputs(out_dir: Path, name: str, formats: tuple[str, ...]) -> list[Path]:
    return [out_dir / f"{name}.{fmt}" for fmt in formats] + [out_dir / f"{name}.json"]


def _remove_stale(paths: list[Path]) -> None:
    for p in paths:
        if p.exists():
            p.unlink()


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
    engine = mfig.get_layout_engine()
    if engine is not None:
        engine.set(rect=(0, 0.06, 1, 0.94))  # type: ignore[call-arg]  # room for the footer
    mfig.text(
        0.005, 0.005, f"Backed by: {backing}. {fig.caption}", fontsize=6.5, wrap=True, va="bottom"
    )
    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        path = out_dir / f"{fig.name}.{fmt}"
        meta: dict[str, Any] = {
            "png": {"Software": None},
            "pdf": {"CreationDate": None, "Producer": None},
            "svg": {"Date": None},
        }.get(fmt, {})
        mfig.savefig(path, dpi=150, metadata=meta)
        written.append(path)
    plt.close(mfig)
    side = out_dir / f"{fig.name}.json"
    tmp = side.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(sidecar, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, side)
    written.append(side)
    return written


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
    """Gate, compute (or load) and draw one figure. On refusal no stale output remains."""
    fig = get_figure(name)
    out = Path(out_dir)
    paths = _outputs(out, fig.name, formats)
    if from_json is not None:
        sidecar = json.loads(Path(from_json).read_text())
        if sidecar.get("figure") != fig.name:
            raise ValueError(
                f"--from-json: {from_json} holds figure {sidecar.get('figure')!r}, not {fig.name!r}"
            )
        _remove_stale(paths)
        return draw(fig, sidecar["data"], sidecar, out, formats)
    _remove_stale(paths)
    evidence = gate(fig, seed, results_cache)
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
    return draw(fig, data, sidecar, out, formats)
