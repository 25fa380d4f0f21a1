"""The per-document time budget: a runaway Python loop is stopped near its deadline, in any
thread, however many short documents came before it."""

import threading
import time

import pytest

from pipelines.budget import DocumentTimeout, time_budget


def spin(seconds: float) -> int:
    """Pure Python work for up to `seconds` (what a runaway cleaner looks like)."""
    end, count = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        count += 1
    return count


def test_a_runaway_loop_is_stopped_with_the_time_it_took():
    started = time.monotonic()
    with pytest.raises(DocumentTimeout) as caught:
        with time_budget(0.2):
            spin(10)
    assert time.monotonic() - started < 5
    assert caught.value.limit_s == 0.2 and caught.value.seconds >= 0.2
    assert "limit 0.2 s" in str(caught.value)


def test_the_overrun_after_many_short_documents_is_still_caught():
    # The watchdog is not woken for budgets that end after its next wake-up; the one that
    # overruns must still be stopped close to its own deadline.
    for _ in range(200):
        with time_budget(0.5):
            spin(0.001)
    started = time.monotonic()
    with pytest.raises(DocumentTimeout):
        with time_budget(0.5):
            spin(10)
    assert time.monotonic() - started < 5


def test_budgets_of_two_threads_are_their_own():
    outcomes = {}

    def work(name: str, seconds: float) -> None:
        try:
            with time_budget(0.5):
                spin(seconds)
            outcomes[name] = "finished"
        except DocumentTimeout:
            outcomes[name] = "stopped"

    threads = [
        threading.Thread(target=work, args=("quick", 0.05)),
        threading.Thread(target=work, args=("runaway", 10)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert outcomes == {"quick": "finished", "runaway": "stopped"}


def test_no_limit_means_no_budget():
    with time_budget(None):
        assert spin(0.05) > 0
