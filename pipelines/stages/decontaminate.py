"""decontaminate: documents that share a run of words with an evaluation example are removed
(GPT-3's 13-gram test; dedup/contamination.py), with the reason `decontaminate:<task>` and the
example's id and the words found as the detail.

The driver reads the recipe's task files and writes the index of their n-grams into the
store once (`prepare`); every worker loads that file in `setup`, so the pipeline carries a
path, not the hashes. Workers hold the evaluation n-grams only, never the corpus's: each
source's documents are checked a row group at a time and written kept or rejected, and the
only shuffle counts, per evaluation example found, the documents it was found in (a small
file per source, summed up per task in the manifest).

Without a `decontamination` section the stage passes dedup's documents through: its manifest
names dedup's files, nothing is copied and no pipeline runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from dedup.contamination import EvalIndex, TaskFileError, read_task
from pipelines.assets import model_location, read_file_bytes
from pipelines.errors import InputError
from pipelines.fetch import is_remote_url
from pipelines.stage import Stage, StageContext
from pipelines.store import KEPT, REJECTED, ReadStage, WriteStage, file_metadata
from pipelines.tables import RowDecisions, split_table

FOUND = "found"  # the tagged output of the examples found, one element per document
FOUND_FILE = "found.jsonl"  # per source: [example number, documents it was found in] a line


class DecontaminateFn(beam.DoFn):
    def __init__(self, index_path: str):
        self.index_path = index_path

    def setup(self) -> None:
        # Once per worker, from the store: never pickled into the pipeline.
        self.index = EvalIndex.from_bytes(read_file_bytes(self.index_path))

    def process(self, table: pa.Table) -> Iterator[Any]:
        found = self.index.check(table.column("text").to_pylist())
        decisions = RowDecisions(
            [f is None for f in found],
            [None if f is None else f"decontaminate:{f.task}" for f in found],
            [None if f is None else f'example {f.example}: "{f.ngram}"' for f in found],
        )
        yield from split_table(table, decisions, "decontaminate")
        for contamination in found:
            if contamination is not None:
                for example in contamination.examples:
                    yield beam.pvalue.TaggedOutput(FOUND, example)


def build_index(ctx: StageContext) -> EvalIndex:
    """The recipe's task files read (URLs fetched into the workdir's cache) and indexed; a bad
    line is one InputError naming the file and the line."""
    settings = ctx.recipe.decontamination
    assert settings is not None, "a stage without the section passes through"
    examples = []
    for task, location in settings.tasks().items():
        path = model_location(ctx, location, f"decontamination.eval_sets ({task})")
        try:
            examples += read_task(task, location, read_file_bytes(path))
        except TaskFileError as exc:
            raise InputError(f"decontamination: {exc}") from None
    return EvalIndex.build(examples, settings.ngram, settings.min_words)


def task_summary(index: EvalIndex, found: dict[int, int], reasons: dict[str, int]) -> dict:
    """Per task: its examples, those too short to check, the examples found (id: documents
    they were found in) and the documents removed (a document counts for its first match)."""
    summary = {}
    for task, counts in index.tasks.items():
        ids = {
            index.example_ids[e]: n for e, n in sorted(found.items()) if index.task_of(e) == task
        }
        summary[task] = {
            "examples": counts.examples,
            "too_short": counts.too_short,
            "examples_found": len(ids),
            "documents_removed": reasons.get(f"decontaminate:{task}", 0),
            "found": ids,
        }
    return summary


class DecontaminateStage(Stage):
    name = "decontaminate"

    def config(self, ctx: StageContext, source: str) -> Any:
        settings = ctx.recipe.decontamination
        return None if settings is None else settings.model_dump(mode="json")

    def passes_through(self, ctx: StageContext) -> bool:
        return ctx.recipe.decontamination is None

    def inputs_identity(self, ctx: StageContext, source: str) -> Any:
        """The upstream runs, and the size and time of every local task file, so that a task
        file changed in place reruns the stage."""
        settings = ctx.recipe.decontamination
        tasks = settings.tasks().values() if settings is not None else []
        files = [file_metadata(path) for path in tasks if not is_remote_url(path)]
        return [*super().inputs_identity(ctx, source), files]

    def prepare(self, ctx: StageContext, sources: list[str]) -> EvalIndex:
        """The evaluation index, built once and written to the store for the workers."""
        index = build_index(ctx)
        ctx.store.write_bytes(ctx.store.eval_index(), index.to_bytes())
        return index

    def expand(
        self, pipeline: beam.Pipeline, ctx: StageContext, source: str, prepared: EvalIndex
    ) -> None:
        check = DecontaminateFn(ctx.store.eval_index())
        outputs = (
            pipeline
            | f"{source}/Read" >> ReadStage(ctx.store, self.upstream, source)
            | f"{source}/Check" >> beam.ParDo(check).with_outputs(KEPT, REJECTED, FOUND)
        )
        {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED]} | f"{source}/Write" >> WriteStage(
            ctx.store, self.name, source, "tables"
        )
        (
            outputs[FOUND]
            | f"{source}/CountFound" >> beam.combiners.Count.PerElement()
            | f"{source}/FoundJson" >> beam.Map(lambda pair: json.dumps(list(pair)))
            | f"{source}/WriteFound"
            >> beam.io.WriteToText(
                ctx.store.path(self.name, source, FOUND_FILE), shard_name_template=""
            )
        )

    def summarize(
        self, ctx: StageContext, source: str, metrics: dict[str, int], prepared: EvalIndex
    ) -> dict[str, Any]:
        summary = super().summarize(ctx, source, metrics, prepared)
        path = ctx.store.path(self.name, source, FOUND_FILE)
        found: dict[int, int] = {}
        if FileSystems.exists(path):
            for line in read_file_bytes(path).decode("utf-8").splitlines():
                example, documents = json.loads(line)
                found[example] = documents
        summary["decontamination"] = task_summary(prepared, found, summary["rejected_by_reason"])
        return summary
