"""Standing fuzz of Monte Carlo checkpoints: tampering, and kill/resume through the CLI.

**Tampering.** A valid checkpoint of a small run is damaged in many ways (truncation, bit flips,
fields of the wrong type with the checksum recomputed as an attacker would, deep nesting, huge
numbers, missing fields, symlinks to ``/dev/zero``, a directory, a FIFO or another run's file,
non-UTF-8 bytes, an oversized sparse file) and the run is resumed from it. Each outcome is:

* **refused**: :class:`CheckpointError` naming the checkpoint file, which is left as it was;
* **equivalent**: the resume is accepted and its results are bit-identical to an uninterrupted
  run (the damage did not change the JSON document, e.g. a bit flip ``e`` -> ``E`` in an
  exponent, or it touched what a resume does not read, e.g. an extra top-level key);
* **raw traceback**: any other exception (``RecursionError``, ``TypeError``, ...);
* **silent acceptance**: accepted with different results. A deliberate *value* edit with a
  recomputed checksum is not fuzzed: the checksum is documented not to detect it
  (``docs/montecarlo.md``); every edit here breaks a type, range or consistency rule.

**Kill/resume.** ``softnce mc`` is SIGKILLed mid-run (at several points) and resumed through the
CLI: the results must be bit-identical to an uninterrupted run, and stale temporaries must be
gone. SIGINT must end ``mc`` (and, in the slow run, ``verify`` and ``plots``) with exit 130 and
one line on stderr.

The default run takes a deterministic slice; ``-m slow`` runs everything, prints a summary line
and writes the counts as JSON to ``$SOFTNCE_FUZZ_DIR`` (default: pytest's temporary directory).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from softnce_theory.numerics.montecarlo import CheckpointError, make_config, run_scenario

ROOT = Path(__file__).resolve().parents[2]
SOFTNCE = str(Path(sys.executable).with_name("softnce"))
SCENARIO = "ranking_nce"
PARAMS: dict[str, Any] = {"sampler": "counts"}
RUN: dict[str, Any] = {"ks": [5, 50], "seed": 3, "chunk": 4096, "max_samples": 600,
                       "min_samples": 40, "device": "cpu"}  # fmt: skip


def _run(checkpoint: Path | None = None, resume: bool = False) -> Any:
    cfg = make_config(SCENARIO, **PARAMS)
    return run_scenario(cfg, checkpoint=checkpoint, resume=resume, **RUN).to_json()["results"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A valid checkpoint (every K finished) and the results of the uninterrupted run."""
    d = tmp_path_factory.mktemp("ck")
    ck = d / "ck.json"
    results = _run(ck)
    return {"bytes": ck.read_bytes(), "doc": json.loads(ck.read_text()), "results": results}


# ----------------------------------------------------------------------------- tampering cases

Tamper = Callable[[Path, dict[str, Any]], None]  # (checkpoint path, reference) -> writes it


def _resigned(doc: dict[str, Any]) -> str:
    body = {k: doc.get(k) for k in ("format", "format_version", "identity", "settings", "state")}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return json.dumps(dict(doc, sha256=hashlib.sha256(canon.encode()).hexdigest()))


def _set(path: tuple[Any, ...], value: Any, resign: bool = True) -> Tamper:
    def tamper(ck: Path, ref: dict[str, Any]) -> None:
        doc = copy.deepcopy(ref["doc"])
        node = doc
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        ck.write_text(_resigned(doc) if resign else json.dumps(doc))

    return tamper


_DELETE = object()


def _bytes(fn: Callable[[bytes], bytes]) -> Tamper:
    def tamper(ck: Path, ref: dict[str, Any]) -> None:
        ck.write_bytes(fn(ref["bytes"]))

    return tamper


def _truncate(i: int, n: int) -> Tamper:
    return _bytes(lambda b: b[: len(b) * i // n])


def _flip(pos_frac: float, bit: int) -> Tamper:
    def fn(b: bytes) -> bytes:
        a = bytearray(b)
        i = int(pos_frac * (len(a) - 1))
        a[i] ^= 1 << bit
        return bytes(a)

    return _bytes(fn)


def _symlink(target: Callable[[Path], Path]) -> Tamper:
    def tamper(ck: Path, ref: dict[str, Any]) -> None:
        ck.symlink_to(target(ck.parent))

    return tamper


def _fifo(d: Path) -> Path:
    os.mkfifo(d / "fifo")
    return d / "fifo"


def _dir(d: Path) -> Path:
    (d / "adir").mkdir()
    return d / "adir"


def _other_run(d: Path) -> Path:
    cfg = make_config("log_mean_exp")
    run_scenario(cfg, ks=[3], max_samples=8, min_samples=4, device="cpu", checkpoint=d / "o.json")
    return d / "o.json"


def _sparse(ck: Path, ref: dict[str, Any]) -> None:
    with open(ck, "wb") as fh:
        fh.truncate(300 * 2**20)  # sparse: no disk used


def _deep_inside(ck: Path, ref: dict[str, Any]) -> None:
    text = ref["bytes"].decode()
    depth = 200_000
    ck.write_text(
        text.replace('"state": {', '"state": {"x": ' + "[" * depth + "]" * depth + ", ", 1)
    )


def _replace_number(new: str) -> Tamper:
    def fn(b: bytes) -> bytes:
        text = b.decode()
        i = text.index('"chunks_done": ') + len('"chunks_done": ')
        j = i
        while text[j].isdigit():
            j += 1
        return (text[:i] + new + text[j:]).encode()

    return _bytes(fn)


def tamper_cases(full: bool) -> list[tuple[str, Tamper]]:
    entry = ("state", "per_k", "50")
    bad_counts: list[Any] = [None, True, "7", [], {}, -1, 1.5, 10**30]
    cases: list[tuple[str, Tamper]] = []
    n_trunc = 24 if full else 4
    cases += [(f"truncate {i}/{n_trunc}", _truncate(i, n_trunc)) for i in range(n_trunc)]
    rng = random.Random(12)
    n_flip = 240 if full else 16
    cases += [(f"flip {f:.4f} bit {bit}", _flip(f, bit))
              for f, bit in ((rng.random(), rng.randrange(8)) for _ in range(n_flip))]  # fmt: skip
    for field in ("chunks_done", "trials_per_chunk"):
        cases += [(f"{field}={v!r:.20}", _set((*entry, field), v)) for v in bad_counts]
    bad: dict[str, list[Any]] = {
        "seconds": [None, True, "x", [], -1, 1e300],
        "moments": [None, "x", [], {}, {"d": 11}],
        "moments.d": [None, True, "11", -1, 10**9, 2],
        "moments.m": [None, 1.5, -2, 99],
        "moments.packed": [None, "x", [], [None], ["a"], {}, 3],
        "per_k": [None, [], "x", 5],
        "entry": [None, [], "x", 7],
        "state": [None, [], "x"],
        "identity": [None, [], {}],
        "format_version": [True, 2, "1", None, [1]],
    }
    for key in ("seconds", "moments", "moments.d", "moments.m", "moments.packed"):
        cases += [(f"{key}={v!r:.20}", _set((*entry, *key.split(".")), v)) for v in bad[key]]
    cases += [("packed[0]=true", _packed_item(True)), ("packed[1]='1'", _packed_item("1"))]
    cases += [(f"per_k={v!r}", _set(("state", "per_k"), v)) for v in bad["per_k"]]
    cases += [("per_k bad K", _set(("state", "per_k", "999"), {}))]
    cases += [(f"entry={v!r}", _set(entry, v)) for v in bad["entry"]]
    cases += [(f"state={v!r}", _set(("state",), v)) for v in bad["state"]]
    cases += [(f"identity.{k}=x", _set(("identity", k), "x")) for k in ("seed", "ks", "chunk")]
    cases += [(f"identity={v!r}", _set(("identity",), v)) for v in bad["identity"]]
    cases += [(f"format_version={v!r}", _set(("format_version",), v, resign=False))
              for v in bad["format_version"]]  # fmt: skip
    for key in ("format", "format_version", "identity", "settings", "state", "sha256"):
        cases.append((f"missing {key}", _set((key,), _DELETE, resign=key != "sha256")))
    for key in ("chunks_done", "trials_per_chunk", "moments"):
        cases.append((f"missing {key}", _set((*entry, key), _DELETE)))
    cases += [("deep nesting (file)", _bytes(lambda b: b"[" * 200_000 + b"]" * 200_000)),
              ("deep nesting (inside)", _deep_inside),
              ("chunks_done=1e999", _replace_number("1e999")),
              ("chunks_done=5000 digits", _replace_number("9" * 5000)),
              ("chunks_done=10**30 (resigned)", _set((*entry, "chunks_done"), 10**30)),
              ("empty", _bytes(lambda b: b"")),
              ("not utf-8", _bytes(lambda b: b"\xff\xfe" + b[2:])),
              ("binary", _bytes(lambda b: bytes(range(256)) * 4)),
              ("json null", _bytes(lambda b: b"null")),
              ("json list", _bytes(lambda b: b"[1, 2]")),
              ("NaN inside", _bytes(lambda b: b.replace(b'"seed": 3', b'"seed": NaN', 1))),
              ("symlink /dev/zero", _symlink(lambda d: Path("/dev/zero"))),
              ("symlink fifo", _symlink(_fifo)),
              ("symlink directory", _symlink(_dir)),
              ("symlink other run", _symlink(_other_run)),
              ("oversized sparse file", _sparse),
              ("extra top-level key", _set(("comment",), "hello", resign=False)),
              ("identical copy", _bytes(lambda b: b)),
              ("settings edited (resigned)", _set(("settings", "max_samples"), 600))]  # fmt: skip
    if not full:
        keep = {"deep nesting (file)", "symlink /dev/zero", "symlink fifo", "not utf-8",
                "chunks_done=5000 digits", "NaN inside", "identical copy"}  # fmt: skip
        cases = [c for i, c in enumerate(cases) if c[0] in keep or i % 6 == 0]
    return cases


def _packed_item(value: Any) -> Tamper:
    def tamper(ck: Path, ref: dict[str, Any]) -> None:
        doc = copy.deepcopy(ref["doc"])
        doc["state"]["per_k"]["50"]["moments"]["packed"][0] = value
        ck.write_text(_resigned(doc))

    return tamper


@dataclasses.dataclass
class Result:
    name: str
    verdict: str  # refused | equivalent | raw traceback | silent acceptance | wrong refusal
    detail: str


def _fingerprint(ck: Path) -> Any:
    if ck.is_symlink():
        return ("link", os.readlink(ck))
    if not ck.exists():
        return None
    return ("file", ck.stat().st_size, hashlib.sha256(ck.read_bytes()).hexdigest()
            if ck.stat().st_size < 2**24 else None)  # fmt: skip


def run_tamper(name: str, tamper: Tamper, d: Path, ref: dict[str, Any]) -> Result:
    d.mkdir(parents=True)
    ck = d / "ck.json"
    tamper(ck, ref)
    before = _fingerprint(ck)
    try:
        got = _run(ck, resume=True)
    except CheckpointError as exc:
        if str(ck) not in str(exc):
            return Result(name, "wrong refusal", f"does not name the file: {exc}")
        if _fingerprint(ck) != before:
            return Result(name, "wrong refusal", "the refused file was modified")
        return Result(name, "refused", str(exc)[:200])
    except BaseException as exc:  # any other exception is what we count
        return Result(name, "raw traceback", f"{type(exc).__name__}: {str(exc)[:200]}")
    if got == ref["results"]:
        return Result(name, "equivalent", "")
    return Result(name, "silent acceptance", "accepted with different results")


def _tamper_all(full: bool, tmp: Path, ref: dict[str, Any]) -> list[Result]:
    return [run_tamper(n, t, tmp / f"c{i}", ref) for i, (n, t) in enumerate(tamper_cases(full))]


def _bad(results: list[Result]) -> list[Result]:
    return [r for r in results if r.verdict not in ("refused", "equivalent")]


def test_checkpoint_tampering_default_slice(tmp_path: Path, reference: dict[str, Any]) -> None:
    results = _tamper_all(False, tmp_path, reference)
    assert len(results) >= 15
    assert not _bad(results), _bad(results)
    assert sum(r.verdict == "refused" for r in results) >= 10  # the slice really tampers


def test_tamper_classifier_can_fail(tmp_path: Path, reference: dict[str, Any]) -> None:
    """A tamper the engine accepts with different results is reported as such."""

    def fewer_chunks(ck: Path, ref: dict[str, Any]) -> None:  # consistent edit, resigned
        doc = copy.deepcopy(ref["doc"])
        entry = doc["state"]["per_k"]["50"]
        moments = entry["moments"]
        moments["packed"][1] += 1.0  # mean of the first output shifted by 1
        ck.write_text(_resigned(doc))

    r = run_tamper("value edit", fewer_chunks, tmp_path / "v", reference)
    assert r.verdict == "silent acceptance"  # documented: a resigned value edit is undetectable


# ----------------------------------------------------------------------------- kill / resume

MC_ARGS = ["mc", SCENARIO, "--k", "10,300", "--max-samples", "60000", "--min-samples", "64",
           "--chunk", "8192", "--seed", "9", "--device", "cpu", "--json"]  # fmt: skip
MC_RUN: dict[str, Any] = {"ks": [10, 300], "seed": 9, "chunk": 8192, "max_samples": 60000, "min_samples": 64,
          "device": "cpu"}  # fmt: skip


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([SOFTNCE, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip


def _chunks_done(ck: Path) -> dict[str, int]:
    try:
        per_k = json.loads(ck.read_text())["state"]["per_k"]
    except (OSError, ValueError, KeyError):
        return {}
    return {k: v.get("chunks_done", 0) for k, v in per_k.items()}


def _signal_when(
    proc: subprocess.Popen[str], ck: Path, ready: Callable[[dict[str, int]], bool], sig: int
) -> bool:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if ck.exists() and ready(_chunks_done(ck)):
            proc.send_signal(sig)
            return True
        time.sleep(0.005)
    return False


def _sigint_mc(tmp_path: Path) -> tuple[int, str, Path]:
    ck = tmp_path / "int.json"
    proc = _spawn([*MC_ARGS, "--checkpoint", str(ck)], tmp_path)
    sent = _signal_when(proc, ck, lambda s: s.get("10", 0) > 0, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert sent, "the run finished before the signal"
    return proc.returncode, err, ck


def test_sigint_mc_exit_130_one_line_checkpoint_intact(tmp_path: Path) -> None:
    rc, err, ck = _sigint_mc(tmp_path)
    assert rc == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("softnce mc: interrupted; checkpoint") and str(ck) in err
    assert json.loads(ck.read_text())["format"] == "softnce-mc-checkpoint"
    assert not list(tmp_path.glob(".*.tmp"))


def _kill_and_resume(tmp_path: Path, ready: Callable[[dict[str, int]], bool], tag: str) -> str:
    ck, out = tmp_path / f"{tag}.json", tmp_path / f"{tag}.out.json"
    proc = _spawn([*MC_ARGS, "--checkpoint", str(ck)], tmp_path)
    sent = _signal_when(proc, ck, ready, signal.SIGKILL)
    proc.communicate(timeout=120)
    if not sent:
        return "not killed (finished first)"
    stale = tmp_path / f".{ck.name}.planted.tmp"
    stale.write_text("{partial")
    res = subprocess.run([SOFTNCE, *MC_ARGS, "--checkpoint", str(ck), "--resume", "--output",
                          str(out)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    if res.returncode != 0 or "Traceback" in res.stderr:
        return f"resume failed rc={res.returncode}: {res.stderr[-300:]}"
    if stale.exists() or list(tmp_path.glob(f".{ck.name}.*.tmp")):
        return "stale temporaries left"
    resumed = json.loads(out.read_text())["results"]
    straight = run_scenario(make_config(SCENARIO), **MC_RUN).to_json()["results"]
    return "ok" if resumed == straight else "results differ from the uninterrupted run"


@pytest.mark.slow
def test_checkpoint_fuzz_full(
    tmp_path: Path, reference: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = time.perf_counter()
    results = _tamper_all(True, tmp_path / "tamper", reference)
    kills = {
        "kill early (first K)": lambda s: s.get("10", 0) > 0,
        "kill mid (second K)": lambda s: s.get("300", 0) > 0,
        "kill late (second K)": lambda s: s.get("300", 0) > 200,
    }
    kill_out = {}
    for i, (name, ready) in enumerate(kills.items()):
        d = tmp_path / f"kill{i}"
        d.mkdir()
        kill_out[name] = _kill_and_resume(d, ready, "k")
    sigint_out = {}
    for delay in (1.5, 6.0):
        for argv in (["verify", "--quick"], ["plots", "--quick", "--out", "figs"]):
            d = tmp_path / f"int_{argv[0]}_{delay}"
            d.mkdir()
            proc = _spawn(argv, d)
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
            ok = proc.returncode == 130 and "Traceback" not in err
            # earlier lines may be per-figure verdicts (REFUSED ...); the error is the last
            ok = ok and err.strip().splitlines()[-1:] == [f"softnce {argv[0]}: interrupted"]
            sigint_out[f"{argv[0]} after {delay} s"] = (
                "ok" if ok else f"rc={proc.returncode} {err[-300:]!r}"
            )
    rc, err, _ = _sigint_mc(tmp_path)
    sigint_out["mc after first checkpoint"] = "ok" if rc == 130 and "Traceback" not in err else err
    seconds = time.perf_counter() - t0
    counts = {
        "cases": len(results) + len(kill_out) + len(sigint_out),
        "tamper_cases": len(results),
        "refused": sum(r.verdict == "refused" for r in results),
        "equivalent": sum(r.verdict == "equivalent" for r in results),
        "raw_tracebacks": sum(r.verdict == "raw traceback" for r in results)
        + sum("Traceback" in v for v in sigint_out.values()),
        "silent_acceptances": sum(r.verdict == "silent acceptance" for r in results),
        "wrong_exit_codes": sum(r.verdict == "wrong refusal" for r in results)
        + sum(v != "ok" and "Traceback" not in v for v in sigint_out.values()),
        "kill_resume": kill_out,
        "sigint": sigint_out,
        "seconds": round(seconds, 1),
        "failures": [dataclasses.asdict(r) for r in _bad(results)],
    }
    where = Path(os.environ.get("SOFTNCE_FUZZ_DIR", tmp_path))
    where.mkdir(parents=True, exist_ok=True)
    (where / "checkpoint_fuzz.json").write_text(json.dumps(counts, indent=1) + "\n")
    with capsys.disabled():
        print(
            f"\ncheckpoint_fuzz: {counts['cases']} cases ({counts['tamper_cases']} tampered: "
            f"{counts['refused']} refused, {counts['equivalent']} equivalent), "
            f"{counts['raw_tracebacks']} raw tracebacks, {counts['silent_acceptances']} silent "
            f"acceptances, {counts['wrong_exit_codes']} wrong exit codes; kill/resume "
            f"{sum(v == 'ok' for v in kill_out.values())}/{len(kill_out)} bit-identical; SIGINT "
            f"{sum(v == 'ok' for v in sigint_out.values())}/{len(sigint_out)} clean; "
            f"{counts['seconds']} s ({where / 'checkpoint_fuzz.json'})"
        )
    assert not _bad(results), _bad(results)
    assert all(v == "ok" for v in kill_out.values()), kill_out
    assert all(v == "ok" for v in sigint_out.values()), sigint_out
