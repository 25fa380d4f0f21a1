"""What every filter returns, and the protocol every quality filter follows.

A quality filter is one module in filters/ with a config class (its thresholds, with the
published defaults) marked `@register`; the config's `build` returns the filter, a callable
from a document to a `Verdict`. A filter that scores documents with a model (perplexity, the
reference classifier) is also a `Scorer`: it loads its model once per worker and scores batches
into a document column, and its verdict then reads that column. Nothing else names a filter:
the recipe, the quality stage and `explain-filters` find every filter through `registered()`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True, slots=True)
class Verdict:
    """Keep or drop, and when dropped the rule, the measured value and the threshold it failed,
    so that every rejection explains itself."""

    keep: bool
    rule: str | None = None  # the rule that dropped the document, e.g. "word_count"
    value: float | None = None  # what was measured
    comparison: str | None = None  # how the value failed: "<" or ">"
    threshold: float | None = None
    text: str | None = None  # the document after line-level cleaning, when a filter changed it
    note: str | None = None  # the detail in the filter's own words, instead of value/threshold

    @property
    def detail(self) -> str | None:
        if self.keep or self.rule is None:
            return None
        if self.note is not None:
            return self.note
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


# What a filter sees: "text" always; "id", "url", "source", "meta" and the model scores
# ("perplexity", "quality_score") when the document has them; and statistics of the whole
# source a filter needs (the perplexity cut-offs).
Document = Mapping[str, Any]

# A local path for a file location: on a worker, a copy of a URI's file on local disk.
LocalFile = Callable[[str], str]


def as_is(location: str) -> str:
    """The location itself: files are local already (tests, benchmarks)."""
    return location


class Filter(Protocol):
    """Decides one document: keep (with its cleaned text, if it cleans lines) or drop."""

    def __call__(self, doc: Document) -> Verdict: ...


@runtime_checkable
class Scorer(Protocol):
    """A filter whose verdict reads a model's score of the document."""

    score_column: str  # the document column its scores fill

    def load(self) -> None:
        """Load the model (once per worker; models are never shipped with a pipeline)."""

    def score_batch(self, texts: Sequence[str], ids: Sequence[str]) -> list[float | None]:
        """One score per text; `ids` let a cross-fitted model skip its training documents."""


class FilterConfig(BaseModel):
    """A filter's recipe entry: `name: Literal["..."]` and its thresholds."""

    # A typo'd key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid")

    name: str
    # The fields that name files (path, URI or http(s) URL): the recipe resolves them against
    # its folder, the quality stage fetches URLs and reruns when a file changes.
    files: ClassVar[tuple[str, ...]] = ()

    def build(self, local_file: LocalFile = as_is) -> Filter:
        """The filter; `local_file` makes a local copy of a file the config names, for
        filters that read one when built or loaded."""
        raise NotImplementedError


_REGISTERED: dict[str, type[FilterConfig]] = {}


def register(config_class: type[FilterConfig]) -> type[FilterConfig]:
    """Class decorator: a filter that recipes can list by its `name`."""
    name = config_class.model_fields["name"].default
    if _REGISTERED.setdefault(name, config_class) is not config_class:
        raise ValueError(f"two filters named {name!r}")
    return config_class


def registered() -> dict[str, type[FilterConfig]]:
    """Every filter's config class by name, from every module in filters/ (imported here, so
    that a new filter module registers itself)."""
    package = importlib.import_module("filters")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"filters.{module.name}")
    return dict(sorted(_REGISTERED.items()))
