"""Run the coverage-guided fuzzers of rproctee's hostile-input readers.

Usage::

    python fuzz/run.py --seconds 60                 # all targets, 60 s in all
    python fuzz/run.py --seconds 3600 --target ta   # one target, an hour
    python fuzz/run.py --seconds 600 --corpus fuzz-corpus   # keep the corpus

Engines: ``atheris`` (libFuzzer, coverage-guided, ``pip install atheris``)
when it imports, else ``hypothesis``: seeds mutated byte- and word-wise,
guided by line coverage of the ``rproctee`` package (``hypothesis.target``
on the number of lines an input reaches, new-coverage inputs kept in the
corpus). ``--engine`` forces one.

Each target runs in its own process for ``seconds / number of targets``,
seeded from the test suite's own inputs (``fuzz/seeds.py``). An input that
makes a target raise anything but its documented error is copied to
``tests/security/regressions/<target>/`` and the run exits with status 1;
``tests/security/test_regressions.py`` replays every file there.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REGRESSIONS = REPO / "tests" / "security" / "regressions"
sys.path.insert(0, str(HERE))

TARGET_NAMES = ("image", "elf", "rsctable", "dtb", "toml", "ta")
ARTIFACT_PREFIXES = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0,
                   help="total time budget, split evenly between targets")
    p.add_argument("--target", action="append", choices=TARGET_NAMES,
                   help="target to fuzz (repeatable; default: all)")
    p.add_argument("--engine", choices=("auto", "atheris", "hypothesis"),
                   default="auto")
    p.add_argument("--corpus", type=Path,
                   help="corpus root to keep between runs (default: a temp dir)")
    p.add_argument("--pure-python", action="store_true",
                   help="fuzz with the pure-Python reference kernels "
                        "(RPROCTEE_PURE_PYTHON=1), which atheris can instrument")
    p.add_argument("--worker", choices=TARGET_NAMES, help=argparse.SUPPRESS)
    p.add_argument("--artifacts", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)  # fmt: skip


def pick_engine(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "hypothesis"
    return "atheris"


# -- the driver ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    engine = pick_engine(args.engine)
    targets = args.target or list(TARGET_NAMES)
    share = max(args.seconds / len(targets), 1.0)
    root = args.corpus or Path(tempfile.mkdtemp(prefix="rproctee-fuzz-"))
    total, failed = 0, []
    print(f"fuzz: engine {engine}, {share:.0f} s per target, corpus {root}")
    for name in targets:
        execs, found = run_target(name, engine, share, root / name, args.pure_python)
        total += execs
        if found:
            failed.append(name)
    verdict = f"findings in {', '.join(failed)}" if failed else "no findings"
    print(f"fuzz: {total} executions in all; {verdict}")
    if args.corpus is None:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


def run_target(
    name: str, engine: str, seconds: float, corpus: Path, pure: bool
) -> tuple[int, list[Path]]:
    """One target in a child process; returns (executions, kept findings)."""
    from seeds import write_seeds

    nseeds = write_seeds(name, corpus)
    artifacts = Path(tempfile.mkdtemp(prefix=f"rproctee-fuzz-{name}-"))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name,
           "--engine", engine, "--seconds", str(seconds), "--corpus", str(corpus),
           "--artifacts", str(artifacts)]  # fmt: skip
    env = dict(os.environ, **({"RPROCTEE_PURE_PYTHON": "1"} if pure else {}))
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=seconds * 4 + 300, check=False)  # fmt: skip
    execs = executions(proc.stdout + proc.stderr)
    found = keep_findings(name, artifacts)
    shutil.rmtree(artifacts, ignore_errors=True)
    print(f"fuzz {name}: {engine}, {time.monotonic() - t0:.1f} s, {execs} executions,"
          f" {nseeds} seeds, corpus {sum(1 for _ in corpus.iterdir())} files,"
          f" {len(found)} findings")  # fmt: skip
    if proc.returncode and not found:
        # died without leaving an input behind: the harness (or the package
        # it imports) is broken, which must fail the run as well
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        print(f"fuzz {name}: the worker failed (status {proc.returncode}) "
              "before any input was kept")  # fmt: skip
        found = [corpus]
    return execs, found


def executions(log: str) -> int:
    """Executions reported by the engine (libFuzzer's "Done N runs")."""
    m = re.findall(r"Done (\d+) runs", log) or re.findall(
        r"number_of_executed_units: (\d+)", log
    )
    return int(m[-1]) if m else 0


def keep_findings(name: str, artifacts: Path) -> list[Path]:
    """Copy crash/timeout/oom inputs to the regression directory."""
    kept = []
    for f in sorted(artifacts.iterdir()):
        if f.is_file() and f.name.startswith(ARTIFACT_PREFIXES):
            dest = REGRESSIONS / name / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
            kept.append(dest)
            print(f"fuzz {name}: finding kept as {dest.relative_to(REPO)}")
    return kept


# -- workers ------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> int:
    name = args.worker
    if pick_engine(args.engine) == "atheris":
        return atheris_worker(name, args.seconds, args.corpus, args.artifacts)
    return hypothesis_worker(name, args.seconds, args.corpus, args.artifacts)


def atheris_worker(name: str, seconds: float, corpus: Path, artifacts: Path) -> int:
    import atheris

    seeds = [f.read_bytes() for f in sorted(corpus.iterdir())]
    with atheris.instrument_imports(include=["rproctee"]):
        import targets

        target = targets.TARGETS[name]
        for data in seeds[:8]:  # imports what the target uses, instrumented
            target(data)

    def one_input(data: bytes) -> None:
        target(data)

    atheris.Setup(
        [sys.argv[0], f"-max_total_time={max(int(seconds), 1)}", "-timeout=30",
         "-rss_limit_mb=4096", f"-artifact_prefix={artifacts}/", "-print_final_stats=1",
         str(corpus)],
        one_input,
    )  # fmt: skip
    atheris.Fuzz()
    return 0


class _TimeUp(Exception):
    """The hypothesis engine's budget is spent."""


def hypothesis_worker(name: str, seconds: float, corpus: Path, artifacts: Path) -> int:
    """Seeds mutated by hypothesis, steered to inputs that reach more lines."""
    import targets
    from hypothesis import HealthCheck, Phase, given, settings, target
    from hypothesis import strategies as st

    fn = targets.TARGETS[name]
    seeds = [f.read_bytes() for f in sorted(corpus.iterdir())] or [b""]
    seen: set[tuple[str, int]] = set()
    count = [0]
    deadline = time.monotonic() + seconds

    @settings(max_examples=10**9, deadline=None, database=None,
              phases=[Phase.generate, Phase.target],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(mutant(st, seeds))
    def one_input(data: bytes) -> None:
        if time.monotonic() > deadline:
            raise _TimeUp
        count[0] += 1
        try:
            lines = covered(fn, data)
        except Exception:
            digest = hashlib.sha1(data).hexdigest()
            (artifacts / f"crash-{digest}").write_bytes(data)
            raise
        target(float(len(lines)), label="lines reached")
        if lines - seen:
            seen.update(lines)
            (corpus / f"cov-{count[0]:08d}").write_bytes(data)

    status = 0
    try:
        one_input()
    except _TimeUp:
        pass
    except Exception as exc:  # noqa: BLE001 - reported, input kept
        print(f"finding: {type(exc).__name__}: {exc}", file=sys.stderr)
        status = 1
    print(f"Done {count[0]} runs in {seconds:.0f} second(s); {len(seen)} lines")
    return status


def covered(fn: Callable[[bytes], None], data: bytes) -> set[tuple[str, int]]:
    """Run ``fn(data)``; the (file, line) pairs of ``rproctee`` it executed."""
    lines: set[tuple[str, int]] = set()

    def local(frame, event, _arg):  # type: ignore[no-untyped-def]
        if event == "line":
            lines.add((frame.f_code.co_filename, frame.f_lineno))
        return local

    def global_(frame, _event, _arg):  # type: ignore[no-untyped-def]
        return local if "rproctee" in frame.f_code.co_filename else None

    sys.settrace(global_)
    try:
        fn(data)
    finally:
        sys.settrace(None)
    return lines


EDGE_WORDS = (0, 1, 7, 8, 0x10, 0x7F, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF,
              0x80000000, 0xFFFFFFF8, 0xFFFFFFF9, 0xFFFFFFFF)  # fmt: skip


def mutant(st, seeds: list[bytes]):  # type: ignore[no-untyped-def]
    """A seed with a few byte-level mutations (flip, set, edge word, cut,
    splice with another seed)."""

    @st.composite
    def build(draw):  # type: ignore[no-untyped-def]
        buf = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(0, 6))):
            op = draw(st.sampled_from(["flip", "byte", "word", "cut", "splice"]))
            pos = draw(st.integers(0, max(len(buf) - 1, 0)))
            if op == "flip" and buf:
                buf[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == "byte" and buf:
                buf[pos] = draw(st.integers(0, 255))
            elif op == "word" and len(buf) >= 4:
                pos -= pos % 4
                word = draw(st.sampled_from(EDGE_WORDS) | st.integers(0, 2**32 - 1))
                buf[pos : pos + 4] = (word % 2**32).to_bytes(4, "little")[
                    : len(buf) - pos]
            elif op == "cut":
                del buf[pos : pos + draw(st.integers(1, 64))]
            elif op == "splice":
                other = draw(st.sampled_from(seeds))
                start = draw(st.integers(0, max(len(other) - 1, 0)))
                buf[pos:pos] = other[start : start + draw(st.integers(1, 64))]
        return bytes(buf)

    return build()


if __name__ == "__main__":
    sys.exit(main())
