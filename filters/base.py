"""What every filter returns: keep or drop, and when dropped the rule, the measured value and
the threshold it failed, so that every rejection explains itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    keep: bool
    rule: str | None = None  # the rule that dropped the document, e.g. "word_count"
    value: float | None = None  # what was measured
    comparison: str | None = None  # how the value failed: "<" or ">"
    threshold: float | None = None
    text: str | None = None  # the document after line-level cleaning, when a filter changed it

    @property
    def detail(self) -> str | None:
        if self.keep or self.rule is None:
            return None
        if self.value is None:
            return self.rule
        return f"{_number(self.value)} {self.comparison} {_number(self.threshold)}"


KEEP = Verdict(True)


def drop_if_below(rule: str, value: float, threshold: float | None) -> Verdict | None:
    """A drop when `value < threshold` (None disables the rule), else None."""
    if threshold is not None and value < threshold:
        return Verdict(False, rule, value, "<", threshold)
    return None


def drop_if_above(rule: str, value: float, threshold: float | None) -> Verdict | None:
    """A drop when `value > threshold` (None disables the rule), else None."""
    if threshold is not None and value > threshold:
        return Verdict(False, rule, value, ">", threshold)
    return None


def _number(x: float | None) -> str:
    if x is None:
        return "-"
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.4g}"
