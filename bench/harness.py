"""The benchmark harness, one copy for every section: percentiles, timing calls, interleaved rounds, running one
measured child process (a cold start: spawned, timed from outside, its last JSON line read), and running a section
on its own."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar, cast

from bench.events import REPO

CHILD_TIMEOUT_S = 60.0
T = TypeVar("T")


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (the ``inclusive`` method, numpy's default); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def time_calls(fn: Callable[[], object], calls: int) -> list[float]:
    """Each of ``calls`` calls of ``fn``, in µs."""
    clock = time.perf_counter_ns
    samples: list[float] = []
    for _ in range(calls):
        start = clock()
        fn()
        samples.append((clock() - start) / 1000)
    return samples


def interleaved_rounds(
    functions: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    calls: int,
    on_round: Callable[[int], None] = lambda _: None,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """``rounds`` rounds of ``calls`` calls of each function, in a new random order each round (so that a noisy
    neighbour weighs on all of them alike): every sample (µs) and each round's p50, by key."""
    samples: dict[str, list[float]] = {key: [] for key in functions}
    round_p50: dict[str, list[float]] = {key: [] for key in functions}
    for round_no in range(1, rounds + 1):
        for key in random.sample(list(functions), len(functions)):
            taken = time_calls(functions[key], calls)
            samples[key] += taken
            round_p50[key].append(percentile(taken, 50))
        on_round(round_no)
    return samples, round_p50


def run_child_json(command: list[str], env: dict[str, str], *, label: str) -> tuple[dict[str, Any], float]:
    """The child's last stdout line as JSON, and its time from spawn to exit (ms); ``label`` names it if it fails."""
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=CHILD_TIMEOUT_S
    )
    process_ms = (time.perf_counter() - start) * 1000
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"{label} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data, process_ms


def report(
    run: Callable[[Callable[[str], None]], T],
    print_result: Callable[[T, int], None],
    summary_lines: Callable[[T], list[str]],
    *,
    json_path: Path | None = None,
) -> int:
    """A benchmark section run on its own: progress on stderr, its tables, then its summary, as ``bench/run.py``
    prints them; the result as JSON to ``json_path`` too when given (a dataclass)."""
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"   .. {message} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    result = run(progress)
    print_result(result, 1)
    print("\n```text\n" + "\n".join(summary_lines(result)) + "\n```")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(asdict(cast(Any, result)), indent=2) + "\n", encoding="utf-8")
        print(f"results written to {json_path}")
    print(f"\n(done in {time.perf_counter() - started:.0f} s)")
    return 0


def stop_process(process: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """Stop a server the benchmark started: SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def standalone_main(
    argv: Sequence[str] | None,
    run: Callable[[bool, Callable[[str], None]], T],
    print_result: Callable[[T, int], None],
    summary_lines: Callable[[T], list[str]],
) -> int:
    """``python bench/<section>.py [--quick]``: ``report`` of the section, quick or not."""
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    return report(lambda progress: run(quick, progress), print_result, summary_lines)
