"""Failpoints for the fault-injection tests: with `LLAMA_RECIPE_FAILPOINTS=name[@n],...` in
its environment, a process kills itself with SIGKILL the n-th time (1st by default) it
passes `failpoint(name)`: the places where a crash is hardest to recover from, such as
between a stage's data and its manifest. Unset, a failpoint costs one dictionary lookup."""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "LLAMA_RECIPE_FAILPOINTS"


def _parse(spec: str) -> dict[str, int]:
    points = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition("@")
        points[name] = int(count) if count else 1
    return points


_POINTS = _parse(os.environ.get(ENV, ""))
_passed: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Die here (SIGKILL, no cleanup of any kind) if the environment asks for it."""
    if not _POINTS or name not in _POINTS:
        return
    _passed[name] += 1
    if _passed[name] == _POINTS[name]:
        os.kill(os.getpid(), signal.SIGKILL)
