"""The one job loop of the summarizer and the indexer: the time is checked before every step, the first included."""

from __future__ import annotations

from motorhead.core.job_loop import Stop, countdown, run_steps


def steps_until(n: int, ran: list[int]) -> object:
    def step() -> bool:
        ran.append(len(ran) + 1)
        return len(ran) >= n

    return step


def test_loop_given_enough_time_runs_until_a_step_says_done() -> None:
    ran: list[int] = []
    result = run_steps(steps_until(3, ran), time_left=lambda: 100.0, reserve=10.0, max_rounds=10)  # type: ignore[arg-type]
    assert (result.steps, result.stop, result.finished, ran) == (3, Stop.DONE, True, [1, 2, 3])


def test_loop_given_less_than_the_reserve_before_the_first_step_runs_none() -> None:
    ran: list[int] = []
    result = run_steps(steps_until(3, ran), time_left=lambda: 9.9, reserve=10.0, max_rounds=10)  # type: ignore[arg-type]
    assert (result.steps, result.stop, ran) == (0, Stop.TIME, [])


def test_loop_given_time_running_out_stops_before_the_step_that_would_not_fit() -> None:
    ran: list[int] = []
    left = iter([50.0, 30.0, 10.5, 9.0])
    result = run_steps(steps_until(10, ran), time_left=lambda: next(left), reserve=10.0, max_rounds=10)  # type: ignore[arg-type]
    assert (result.steps, result.stop, ran) == (3, Stop.TIME, [1, 2, 3])


def test_loop_given_more_work_than_rounds_stops_at_the_last_round() -> None:
    ran: list[int] = []
    result = run_steps(steps_until(10, ran), time_left=lambda: 100.0, reserve=0.0, max_rounds=4)  # type: ignore[arg-type]
    assert (result.steps, result.stop, result.finished, len(ran)) == (4, Stop.ROUNDS, False, 4)


def test_countdown_given_a_clock_counts_down_from_the_start() -> None:
    now = iter([100.0, 103.5])
    left = countdown(40.0, now=lambda: next(now))
    assert left() == 36.5
