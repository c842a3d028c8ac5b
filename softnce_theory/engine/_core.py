"""The engine that joins the symbolic, precise and production legs of every claim.

Status rules (the honesty contract):

* ``refuted``: some leg found a counterexample (``outcome == "fail"``, or the prover found the
  statement false), or a definition the statement uses disagrees with its oracle.
* ``error``: some leg raised, a leg named in ``claim.evidence`` has no implementation, a numeric
  leg looked at zero points, or a definition the statement uses has no definition leg.
* ``proved``: the engine's prover (:mod:`._prover`) closed the claim's tactic on the claim's own
  statement for the generality the statement has, and every other leg passed.
* ``checked``: the legs passed (numeric points, or an exact proof at fixed instances of a
  general statement), but the statement itself is not proved. Numeric evidence never yields
  ``proved``; neither does a legacy ``prove()`` that returns its own verdict.

Besides the claims, each family registers *conformance* checks (production loss against its
mpmath oracle, value and gradient, float64) that the engine runs and reports alongside.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from multiprocessing.connection import wait
from typing import Any

from softnce_theory.derivations import CheckConfig, Claim, LegRegistry, LegResult, Proof
from softnce_theory.derivations._claim import LegName, Outcome
from softnce_theory.derivations.tactics import describe as describe_tactic
from softnce_theory.engine._catalogue import (
    all_claims,
    all_definitions,
    conformance_registry,
    definition_registry,
    precise_registry,
    production_registry,
)
from softnce_theory.engine._prover import lemma_check, statement_of
from softnce_theory.engine._prover import prove as prove_statement
from softnce_theory.registry import registry


def _conformance_items(families: Iterable[str] | None) -> list[tuple[str, Callable[..., Any]]]:
    reg = conformance_registry(families)
    return [(name, fn) for name in reg if (fn := reg.get(name)) is not None]


@dataclass
class ClaimResult:
    claim: Claim
    status: str
    legs: list[LegResult] = field(default_factory=list)
    seconds: float = 0.0
    #: the statement's LaTeX and the facts as strings, when rendered already (by the worker
    #: that built the statement for the prover, while SymPy's cache still holds it)
    latex: str | None = None
    facts: list[str] | None = None

    def leg(self, name: str) -> LegResult | None:
        return next((r for r in self.legs if r.leg == name), None)

    @property
    def scope(self) -> str:
        """``general`` / ``witness`` (proved as stated), ``instances`` (proved only at fixed
        sizes: evidence), or ``none`` (no symbolic proof)."""
        sym = self.leg("symbolic")
        if sym is None or sym.proof is None or not sym.proof.proved:
            return "none"
        return sym.proof.scope_kind

    @property
    def counterexample(self) -> str | None:
        for r in self.legs:
            if r.outcome == "fail":
                return r.counterexample
        return None

    def to_json(self) -> dict[str, Any]:
        c = self.claim
        return {
            "id": c.id,
            "family": c.family,
            "kind": c.kind,
            "status": self.status,
            "text": c.text,
            "source": c.source,
            "facts": self.facts if self.facts is not None else facts_of(c),
            "uses": list(c.uses),
            "tactic": describe_tactic(c.tactic) if c.tactic is not None else None,
            "scope": self.scope,
            "evidence_required": list(c.evidence),
            "latex": self.latex if self.latex is not None else _safe_latex(c),
            "seconds": round(self.seconds, 4),
            "legs": [r.to_json() for r in self.legs],
        }


def facts_of(c: Claim) -> list[str]:
    """The claim's facts as SymPy strings (or the reason they failed to build)."""
    try:
        return [sympy_str(f) for f in c.fact_list()]
    except Exception as exc:  # reported, not fatal to the run
        return [f"<facts failed to build: {exc!r}>"]


def _safe_latex(c: Claim) -> str:
    import sympy

    try:
        return str(sympy.latex(statement_of(c)))  # the statement the prover worked on
    except Exception as exc:  # a broken statement is reported, not fatal to the run
        return f"<statement failed to build: {exc!r}>"


def sympy_str(e: Any) -> str:
    import sympy

    return sympy.sstr(e)


def status_of(claim: Claim, legs: list[LegResult]) -> str:
    """Combine leg outcomes into a status (see the module docstring)."""
    by = {r.leg: r for r in legs}
    if any(r.outcome == "fail" for r in legs):
        return "refuted"
    if any(r.outcome == "error" for r in legs):
        return "error"
    for need in claim.evidence:
        if need not in by or by[need].outcome == "skip":
            if need == "symbolic":
                continue  # an unclosed proof attempt downgrades to "checked", never errors
            return "error"
    sym = by.get("symbolic")
    evidence = [
        r
        for r in legs
        if r.leg not in ("symbolic", "definition") and r.outcome == "pass" and r.n_points > 0
    ]
    sym_ok = sym is not None and sym.outcome == "pass" and sym.proof is not None
    if sym_ok and sym.proof.binding:  # type: ignore[union-attr]
        return "proved"
    if evidence or sym_ok:  # sym_ok here: proved at instances only
        return "checked"
    return "error"


def _require_points(res: LegResult) -> LegResult:
    """A numeric leg that passed without looking at a single point is an error."""
    if res.leg != "symbolic" and res.outcome == "pass" and res.n_points <= 0:
        res.outcome = "error"
        res.detail = (res.detail + "; " if res.detail else "") + "the leg looked at zero points"
    return res


def _timed(leg: LegName, fn: Callable[[], LegResult]) -> LegResult:
    t0 = time.perf_counter()
    try:
        res = fn()
    except Exception as exc:
        res = LegResult(
            leg=leg,
            outcome="error",
            detail=f"{type(exc).__name__}: {exc}",
            extra={"traceback": traceback.format_exc(limit=6)},
        )
    res.seconds = time.perf_counter() - t0
    return _require_points(res)


def run_symbolic(claim: Claim) -> LegResult:
    """The engine's prover applied to the claim's statement (a legacy ``prove()`` never counts)."""
    if claim.tactic is None:
        return LegResult(
            leg="symbolic",
            outcome="skip",
            detail="legacy prove() returns its own verdict and is not bound to the statement: "
            "not counted",
        )
    proof: Proof = prove_statement(claim)
    outcome: Outcome
    if proof.refuted:
        outcome = "fail"
    elif proof.proved:
        outcome = "pass"
    else:
        outcome = "skip"  # attempted, did not close: no evidence either way
    return LegResult(
        leg="symbolic",
        outcome=outcome,
        detail=proof.method + (f" ({proof.detail})" if proof.detail else ""),
        counterexample=proof.counterexample,
        proof=proof,
    )


def run_definitions(
    cfg: CheckConfig, families: Iterable[str] | None = None, only: Iterable[str] | None = None
) -> dict[str, LegResult]:
    """Each family definition against its oracle (the definition leg), keyed by definition id.
    A definition without a leg is an ``error``."""
    reg = definition_registry(families)
    wanted = set(only) if only is not None else None
    out: dict[str, LegResult] = {}
    for d in all_definitions(list(families) if families else None):
        if wanted is not None and d.id not in wanted:
            continue
        fn = reg.get(d.id)
        if fn is None:
            out[d.id] = LegResult(
                leg="definition",
                outcome="error",
                detail=f"{d.id} has no definition leg (DEFINITION in numerics/{d.family}.py)",
            )
        else:
            out[d.id] = _timed("definition", partial(fn, cfg))
    return out


def _definition_legs(
    claim: Claim, cfg: CheckConfig, definitions: dict[str, LegResult] | None
) -> list[LegResult]:
    """One ``definition`` leg per definition the claim's statement uses."""
    ids = [f"{claim.family}.{name}" for name in claim.uses]
    if definitions is None:
        definitions = run_definitions(cfg, [claim.family], only=ids) if ids else {}
    out = []
    for did in ids:
        res = definitions.get(did)
        if res is None:
            out.append(
                LegResult(leg="definition", outcome="error", detail=f"unknown definition {did}")
            )
        else:
            out.append(replace(res, detail=f"{did}: {res.detail}", extra={"definition": did}))
    return out


def check_claim(
    claim: Claim,
    cfg: CheckConfig,
    precise: LegRegistry | None = None,
    production: LegRegistry | None = None,
    definitions: dict[str, LegResult] | None = None,
) -> ClaimResult:
    """Run every available leg of one claim and combine them into a status."""
    t0 = time.perf_counter()
    legs = _definition_legs(claim, cfg, definitions) + claim_legs(claim, cfg, precise, production)
    return ClaimResult(claim, status_of(claim, legs), legs, time.perf_counter() - t0)


def claim_legs(
    claim: Claim,
    cfg: CheckConfig,
    precise: LegRegistry | None = None,
    production: LegRegistry | None = None,
    parts: tuple[LegName, ...] = ("symbolic", "precise", "production"),
) -> list[LegResult]:
    """The symbolic, precise and production legs of one claim (no definition legs), or those
    named in ``parts``."""
    legs: list[LegResult] = []
    if "symbolic" in parts and (claim.tactic is not None or claim.prove is not None):
        legs.append(_timed("symbolic", partial(run_symbolic, claim)))
    elif "symbolic" in parts:  # a numeric-only claim still states something: it must build
        try:
            statement_of(claim)
        except Exception as exc:
            legs.append(
                LegResult(
                    leg="definition",
                    outcome="error",
                    detail=f"the statement failed to build from its definitions: {exc!r}",
                )
            )
    legs_by: tuple[tuple[LegName, LegRegistry | None, Callable[[], LegRegistry]], ...] = (
        ("precise", precise, precise_registry),
        ("production", production, production_registry),
    )
    for name, given, default in legs_by:
        if name not in parts:
            continue
        fn = (given if given is not None else default()).get(claim.id)
        if fn is not None:
            legs.append(_timed(name, partial(fn, cfg)))
        elif name in claim.evidence:
            legs.append(
                LegResult(leg=name, outcome="error", detail=f"required {name} leg not implemented")
            )
    return legs


# ----------------------------------------------------------------------------- whole catalogue

_POOL_STATE: dict[str, Any] = {}


def _pool_init() -> None:
    """A worker shares the cores with the others: one thread each (torch reads the variables
    when it is imported; a worker that never runs a torch leg never imports it)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    if "torch" in sys.modules:  # imported before the fork (e.g. by the calling program)
        sys.modules["torch"].set_num_threads(1)


def _pool_state(key: str) -> Any:
    """A registry of the worker's process (``precise``, ``production``), resolved on first use,
    so that only a process that runs a torch leg imports the engine modules and torch."""
    st = _POOL_STATE
    if key not in st:
        resolve = {"precise": precise_registry, "production": production_registry}[key]
        st[key] = resolve(st["families"])
    return st[key]


def _pool_task(task: tuple[str, int]) -> tuple[str, int, Any, float]:
    kind, i = task
    st = _POOL_STATE
    cfg = st["cfg"]
    t0 = time.perf_counter()
    if kind == "definition":
        out: Any = run_definitions(cfg, only=[st["definitions"][i]])
    elif kind == "conformance":
        out = run_conformance(cfg, [st["conformance"][i]])
    elif kind == "production":
        claim = st["claims"][i]
        out = claim_legs(claim, cfg, production=_pool_state(kind), parts=("production",))
    else:
        claim = st["claims"][i]
        legs = claim_legs(claim, cfg, _pool_state("precise"), parts=("symbolic", "precise"))
        seconds = time.perf_counter() - t0
        # rendered here, where the statement was just built, not in the parent from scratch
        return kind, i, (legs, _safe_latex(claim), facts_of(claim)), seconds
    return kind, i, out, time.perf_counter() - t0


def _worker_loop(conn: Any) -> None:
    """A forked worker: run the tasks the parent sends until it sends ``None``."""
    _pool_init()
    while (task := conn.recv()) is not None:
        try:
            conn.send(("ok", _pool_task(task)))
        except BaseException:  # a leg failure is a LegResult already; this is a bug
            conn.send(("crash", traceback.format_exc()))


def _run_tasks(
    queues: dict[str, deque[tuple[str, int]]],
    jobs: int,
    collect: Callable[..., None],
) -> None:
    """Run the ``sympy`` and ``torch`` task queues on ``jobs`` forked workers, one task at a
    time per worker. Worker 0 prefers the torch queue, the others the SymPy queue, and each
    takes from the other queue when its own is empty: with the legs that need torch gathered on
    one worker, the others usually never import it (about 1 s of CPU each on a 2-core machine).
    Results do not depend on the assignment: every leg seeds itself from the config."""
    ctx = multiprocessing.get_context("fork")
    workers = []
    for _ in range(jobs):
        here, there = ctx.Pipe()
        proc = ctx.Process(target=_worker_loop, args=(there,), daemon=True)
        proc.start()
        there.close()
        workers.append((proc, here))
    prefs = [("torch", "sympy")] + [("sympy", "torch")] * (jobs - 1)

    def feed(k: int) -> bool:
        for name in prefs[k]:
            if queues[name]:
                workers[k][1].send(queues[name].popleft())
                return True
        return False

    busy = {k for k in range(jobs) if feed(k)}
    try:
        while busy:
            for ready in wait([workers[k][1] for k in busy]):
                k = next(k for k in busy if workers[k][1] is ready)
                conn = workers[k][1]
                try:
                    status, payload = conn.recv()
                except EOFError:
                    code = workers[k][0].exitcode
                    raise RuntimeError(f"verify worker {k} died (exit {code})") from None
                if status != "ok":
                    raise RuntimeError(f"verify worker {k} failed:\n{payload}")
                collect(*payload)
                if not feed(k):
                    busy.discard(k)
    finally:
        for _, conn in workers:
            try:
                conn.send(None)
            except OSError:
                pass
            conn.close()
        for proc, _ in workers:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


def run_catalogue(
    claims: list[Claim],
    cfg: CheckConfig,
    *,
    jobs: int = 1,
    families: list[str] | None = None,
    definition_ids: list[str] | None = None,
    conformance: bool = True,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[ClaimResult], dict[str, LegResult], dict[str, LegResult]]:
    """Every claim, definition leg and (optionally) conformance check, on ``jobs`` worker
    processes (forked; ``jobs=1`` runs in-process). Results do not depend on ``jobs``: every leg
    seeds itself from ``cfg``. Returns (claim results, definition legs, conformance legs)."""
    def_ids = definition_ids
    if def_ids is None:
        def_ids = [d.id for d in all_definitions(families)]
    fams = list(families) if families else None
    selected = registry().select(fams)
    # one conformance task per family: its checks are resolved in the worker (torch)
    conf_fams = [f.name for f in selected] if conformance else []
    # families declared from a definition run autograd in their precise legs too
    generic = {f.name for f in selected if f.spec is not None}
    queues: dict[str, deque[tuple[str, int]]] = {"sympy": deque(), "torch": deque()}
    for i, c in enumerate(claims):
        queues["torch" if c.family in generic else "sympy"].append(("claim", i))
        queues["torch"].append(("production", i))
    queues["sympy"].extend(("definition", i) for i in range(len(def_ids)))
    queues["torch"].extend(("conformance", i) for i in range(len(conf_fams)))
    defs: dict[str, LegResult] = {}
    confs: dict[str, dict[str, LegResult]] = {}
    parts: dict[int, tuple[list[LegResult], str, list[str]]] = {}
    production_parts: dict[int, list[LegResult]] = {}
    seconds: dict[int, float] = {}

    def collect(kind: str, i: int, out: Any, secs: float) -> None:
        if kind == "definition":
            defs.update(out)
        elif kind == "conformance":
            confs[conf_fams[i]] = out
        else:
            (production_parts if kind == "production" else parts)[i] = out
            seconds[i] = seconds.get(i, 0.0) + secs
            if progress is not None and i in parts and i in production_parts:
                progress(claims[i].id)

    _POOL_STATE.update(
        cfg=cfg, claims=claims, definitions=def_ids, conformance=conf_fams, families=fams
    )
    try:
        if jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
            _run_tasks(queues, jobs, collect)
        else:
            for name in ("sympy", "torch"):
                while queues[name]:
                    collect(*_pool_task(queues[name].popleft()))
    finally:
        _POOL_STATE.clear()
    results = []
    for i, c in enumerate(claims):
        own, latex, facts = parts[i]
        all_legs = _definition_legs(c, cfg, defs) + own + production_parts[i]
        results.append(ClaimResult(c, status_of(c, all_legs), all_legs, seconds[i], latex, facts))
    ordered_conf = {k: v for name in conf_fams for k, v in confs[name].items()}
    return results, dict(sorted(defs.items())), ordered_conf


def select_claims(
    families: list[str] | None = None, claim_ids: list[str] | None = None
) -> list[Claim]:
    claims = all_claims(families)  # an unknown family name is a ValueError naming the choices
    if claim_ids:
        known = {c.id for c in claims}
        missing = [i for i in claim_ids if i not in known]
        if missing:
            raise ValueError(f"--claim: unknown claim id(s) {missing}; see `softnce claims`")
        claims = [c for c in claims if c.id in set(claim_ids)]
    return claims


def run_lemmas() -> list[dict[str, Any]]:
    """Every library lemma's own check (the symbolic argument behind each Reduction). Run through
    the prover's per-process cache, so that workers forked afterwards reuse the results."""
    from softnce_theory.derivations.lemmas import LEMMAS

    out = []
    for lem in LEMMAS:
        t0 = time.perf_counter()
        try:
            ok, how = lemma_check(lem)
        except Exception as exc:  # a broken lemma is reported, and unusable by the prover
            ok, how = False, f"{type(exc).__name__}: {exc}"
        out.append(
            {
                "name": lem.name,
                "text": lem.text,
                "ok": bool(ok),
                "argument": how,
                "source": lem.source,
                "seconds": round(time.perf_counter() - t0, 4),
            }
        )
    return out


def run_conformance(cfg: CheckConfig, families: list[str] | None = None) -> dict[str, LegResult]:
    """Production losses against their mpmath oracles (float64, value and gradient)."""
    out = {}
    for name, fn in _conformance_items(families):
        out[name] = _timed("production", partial(fn, cfg))
    return out
