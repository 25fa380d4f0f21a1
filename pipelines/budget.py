"""Per-document time budgets: a document that takes longer than its budget in an extractor or
a filter is stopped and rejected, instead of holding a worker for hours.

One watchdog thread per process raises DocumentTimeout in the thread whose budget ran out
(CPython's asynchronous exceptions). Python code is interrupted between two bytecodes; a
long call into C (a regex, a parser written in C) cannot be, so it finishes first and the
overrun is reported when the block ends. Budgets are per thread, so Beam's worker threads
each have their own.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class DocumentTimeout(Exception):
    """A document ran past its time budget."""

    def __init__(self, seconds: float = 0.0, limit_s: float = 0.0):
        super().__init__(f"took {seconds:.1f} s (limit {limit_s:g} s)")
        self.seconds = seconds
        self.limit_s = limit_s


# PyThreadState_SetAsyncExc(thread id, exception type), and with NULL to take a pending one back.
_raise_in = ctypes.pythonapi.PyThreadState_SetAsyncExc
_raise_in.argtypes = [ctypes.c_ulong, ctypes.py_object]
_raise_in.restype = ctypes.c_int
_take_back = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


@dataclass
class _Budget:
    thread: int
    deadline: float
    fired: bool = False


class _Watchdog:
    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.budgets: dict[int, _Budget] = {}  # one per thread: budgets do not nest
        self.thread: threading.Thread | None = None
        # When the watchdog wakes next: a budget ending later needs no wake-up call, so with
        # one limit for all documents it wakes once per limit, not once per document.
        self.wake_at = float("inf")

    def start(self, budget: _Budget) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="budget", daemon=True)
                self.thread.start()
            self.budgets[budget.thread] = budget
            if budget.deadline < self.wake_at:
                self.lock.notify()

    def stop(self, budget: _Budget) -> None:
        """End a budget; a timeout raised but not yet delivered is taken back."""
        with self.lock:
            if budget.fired:
                _take_back(budget.thread, None)
            if self.budgets.get(budget.thread) is budget:
                del self.budgets[budget.thread]

    def _run(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                waiting = [b for b in self.budgets.values() if not b.fired]
                for budget in waiting:
                    if budget.deadline <= now:
                        budget.fired = True
                        _raise_in(budget.thread, DocumentTimeout)
                pending = [b.deadline for b in waiting if not b.fired]
                self.wake_at = max(now + 0.01, min(pending)) if pending else float("inf")
                self.lock.wait(timeout=self.wake_at - now if pending else None)


_WATCHDOG = _Watchdog()


@contextmanager
def time_budget(limit_s: float | None) -> Iterator[None]:
    """Run the block within `limit_s` seconds or raise DocumentTimeout (with the seconds it
    took). None: no limit. Budgets do not nest: an inner one replaces the outer's watchdog."""
    if limit_s is None:
        yield
        return
    started = time.monotonic()
    budget = _Budget(threading.get_ident(), started + limit_s)
    _WATCHDOG.start(budget)
    try:
        yield
    except DocumentTimeout:
        _WATCHDOG.stop(budget)
        raise DocumentTimeout(time.monotonic() - started, limit_s) from None
    finally:
        _WATCHDOG.stop(budget)
    seconds = time.monotonic() - started
    if seconds > limit_s:  # a call into C that could not be interrupted
        raise DocumentTimeout(seconds, limit_s)
