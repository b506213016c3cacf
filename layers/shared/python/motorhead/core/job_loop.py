"""The loop every background job runs (summary jobs, index jobs): one step at a time, each step committed on its own,
and no step started without the time to finish it.

A Lambda invocation that runs past its timeout is killed mid-step; so before every step, the first included, the
loop asks how much time is left and stops when it is under the step's worst case (``reserve``). What was committed
stays; the caller decides whether the rest is an error (SQS delivers the job again) or the next job's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Stop(Enum):
    DONE = "done"  # a step found nothing more to do
    TIME = "time"  # less than ``reserve`` seconds were left before a step
    ROUNDS = "rounds"  # ``max_rounds`` steps ran and there is still work


@dataclass(frozen=True, slots=True)
class LoopResult:
    steps: int  # steps that ran (the one that found nothing to do included)
    stop: Stop

    @property
    def finished(self) -> bool:
        return self.stop is Stop.DONE


def countdown(seconds: float, now: Callable[[], float] = time.monotonic) -> Callable[[], float]:
    """A ``time_left`` for a job run outside Lambda (tests, benchmarks): ``seconds`` from now."""
    started = now()
    return lambda: seconds - (now() - started)


@dataclass(frozen=True, slots=True)
class StepBudget:
    """What a job may spend: no step starts with less than ``reserve`` seconds left (one step's worst case), at most
    ``max_rounds`` steps, and outside Lambda (no remaining time given) ``fallback`` seconds of work."""

    reserve: float = 0.0
    max_rounds: int = 100
    fallback: float = 40.0
    clock: Callable[[], float] = time.monotonic

    def run(self, step: Callable[[], bool], time_left: Callable[[], float] | None = None) -> LoopResult:
        """``run_steps`` with this budget; ``time_left``: the Lambda invocation's remaining time, if there is one."""
        return run_steps(
            step,
            time_left=time_left or countdown(self.reserve + self.fallback, self.clock),
            reserve=self.reserve,
            max_rounds=self.max_rounds,
        )


def run_steps(
    step: Callable[[], bool], *, time_left: Callable[[], float], reserve: float, max_rounds: int
) -> LoopResult:
    """Call ``step`` until it returns True (done), checking the time before each call."""
    for done_so_far in range(max_rounds):
        if time_left() < reserve:
            return LoopResult(steps=done_so_far, stop=Stop.TIME)
        if step():
            return LoopResult(steps=done_so_far + 1, stop=Stop.DONE)
    return LoopResult(steps=max_rounds, stop=Stop.ROUNDS)
