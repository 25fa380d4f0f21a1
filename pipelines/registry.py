"""The stages, in the order they run, and what each one reads: the one place that says so.

Beam-free, so the recipe, the flows and the command line can name stages without loading
the pipeline code; `pipelines.stages` maps each name to the class that runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class StageSpec:
    name: str
    per_source: bool  # once per source, or once over every source (`_all` in the store)
    # The stages whose output this one reads. For a per-source stage the first is the one
    # whose kept documents are its input (kept + rejected here == kept there).
    reads: tuple[str, ...] = ()
    optional_reads: tuple[str, ...] = ()  # read only when the recipe uses them

    @property
    def upstream(self) -> str | None:
        return self.reads[0] if self.per_source and self.reads else None


SPECS: tuple[StageSpec, ...] = (
    StageSpec("extract", per_source=True),
    StageSpec("langid", per_source=True, reads=("extract",)),
    StageSpec("train-classifier", per_source=False, reads=("langid",)),
    StageSpec("quality", per_source=True, reads=("langid",), optional_reads=("train-classifier",)),
    StageSpec("dedup", per_source=True, reads=("quality",)),
    StageSpec("decontaminate", per_source=True, reads=("dedup",)),
    StageSpec("train-tokenizer", per_source=False, reads=("decontaminate",)),
    StageSpec("tokenize", per_source=True, reads=("decontaminate", "train-tokenizer")),
    StageSpec("mix", per_source=False, reads=("train-tokenizer", "tokenize")),
)

STAGES: tuple[str, ...] = tuple(spec.name for spec in SPECS)
PER_SOURCE_STAGES: tuple[str, ...] = tuple(spec.name for spec in SPECS if spec.per_source)
# For pydantic: a key or value that must be a stage name.
StageName = Literal[STAGES]  # type: ignore[valid-type]

_BY_NAME = {spec.name: spec for spec in SPECS}


def spec(name: str) -> StageSpec:
    return _BY_NAME[name]
