"""How every stage runs: skip what is current, build one Beam pipeline for the rest, check the
counts, then commit each output by writing its manifest last."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

from pipelines import __version__
from pipelines.beam_io import pipeline_options
from pipelines.errors import EnvironmentProblem, InputError, StageError, UserError
from pipelines.faults import failpoint
from pipelines.lease import check_held
from pipelines.recipe import Recipe, is_uri
from pipelines.registry import spec
from pipelines.store import (
    ALL_SOURCES,
    PASSTHROUGH,
    StageStore,
    ipc_rows,
    parquet_rows,
    reject_reasons,
)


@dataclass
class StageContext:
    recipe: Recipe
    store: StageStore
    beam_flags: Sequence[str] = ()

    @classmethod
    def from_recipe(cls, recipe: Recipe, beam_flags: Sequence[str] = ()) -> StageContext:
        return cls(recipe, StageStore(recipe.workdir), tuple(beam_flags))


@dataclass
class StageResult:
    stage: str
    source: str
    status: str  # "ran", "skipped" (current) or "not needed" (the recipe does not use it)
    manifest: dict[str, Any] = field(default_factory=dict)


class Stage:
    """A stage: `build` adds its Beam transforms for the sources that must run, `summarize`
    counts each one's result. Its place in the order, whether it runs per source and what it
    reads come from `pipelines.registry`, under its `name`.

    Work on the driver before the pipeline is built (validation, resolving model files,
    naming a version) happens in `prepare`, whose result reaches `build`, `summarize` and
    `after_commit` as `prepared`: nothing about one run is kept on the stage."""

    name: str = ""

    @property
    def per_source(self) -> bool:
        return spec(self.name).per_source

    @property
    def upstream(self) -> str | None:
        """The stage whose kept documents this one reads (per-source stages)."""
        return spec(self.name).upstream

    def config(self, ctx: StageContext, source: str) -> Any:
        """The configuration that decides this stage's output (part of its fingerprint)."""
        raise NotImplementedError

    def inputs_identity(self, ctx: StageContext, source: str) -> Any:
        """What identifies the inputs: by default the run ids of the upstream manifests."""
        return [m["run_id"] for m in self.upstream_manifests(ctx, source)]

    def upstream_manifests(self, ctx: StageContext, source: str) -> list[dict[str, Any]]:
        """The manifests of what this stage reads, the documents' upstream first (by default
        every stage the registry says it reads, for this source or for all)."""
        manifests = []
        for stage in spec(self.name).reads:
            if not spec(stage).per_source:
                targets = [ALL_SOURCES]
            elif self.per_source:
                targets = [source]
            else:  # a stage over every source reads each one's output
                targets = list(ctx.recipe.sources)
            manifests += [require_manifest(ctx, stage, t, self.name) for t in targets]
        return manifests

    def fingerprint(self, ctx: StageContext, source: str) -> str:
        blob = json.dumps(
            [self.name, __version__, self.config(ctx, source), self.inputs_identity(ctx, source)],
            sort_keys=True,
            default=str,
        ).encode()
        return hashlib.sha256(blob).hexdigest()

    def prepare(self, ctx: StageContext, sources: Sequence[str]) -> Any:
        """Work on the driver before the pipeline is built; the result is `prepared`."""
        return None

    def build(
        self, pipeline: beam.Pipeline, ctx: StageContext, sources: Sequence[str], prepared: Any
    ) -> None:
        """The stage's transforms for every source that runs (by default one `expand` each)."""
        for source in sources:
            self.expand(pipeline, ctx, source, prepared)

    def expand(
        self, pipeline: beam.Pipeline, ctx: StageContext, source: str, prepared: Any
    ) -> None:
        raise NotImplementedError

    def widen(self, ctx: StageContext, sources: list[str]) -> list[str]:
        """The sources that must run with these (a stage over groups of sources widens)."""
        return sources

    def needed(self, ctx: StageContext) -> bool:
        """False when the recipe does not use this stage (nothing runs, nothing is written)."""
        return True

    def passes_through(self, ctx: StageContext) -> bool:
        """True when the recipe asks nothing of this per-source stage: it keeps its upstream's
        documents as they are, by reference (a manifest that names the upstream; no copy, no
        pipeline), so that what reads it reads the upstream's files."""
        return False

    def clear(self, ctx: StageContext, source: str) -> None:
        """Forget the output for a rerun (the manifest first, so it reads as unfinished)."""
        ctx.store.clear(self.name, source)

    def after_commit(self, ctx: StageContext, source: str, prepared: Any) -> None:
        """Work after the manifest is written (optional)."""

    # How the kept documents are stored: Parquet, or Arrow IPC for token rows.
    kept_suffix = ".parquet"

    def summarize(
        self, ctx: StageContext, source: str, metrics: dict[str, int], prepared: Any
    ) -> dict[str, Any]:
        """Counts for the manifest, checked: kept + rejected must equal the stage's input."""
        kept_files = ctx.store.parts(self.name, source, self.kept_suffix)
        kept = ipc_rows(kept_files) if self.kept_suffix == ".arrow" else parquet_rows(kept_files)
        rejected = parquet_rows(ctx.store.rejects(self.name, source))
        upstream = self.upstream_manifests(ctx, source) if self.upstream else []
        expected = upstream[0]["counts"]["kept"] if upstream else kept + rejected
        if kept + rejected != expected:
            raise StageError(
                f"{self.name}/{source}: kept {kept} + rejected {rejected} != input {expected}"
            )
        return {
            "counts": {"input": expected, "kept": kept, "rejected": rejected},
            "rejected_by_reason": reject_reasons(ctx.store.rejects(self.name, source)),
            **metrics,  # the stage's Beam counters: kept_text_chars, tokens
        }

    def metrics_namespace(self, source: str) -> str:
        return f"{self.name}/{source}"


def require_manifest(ctx: StageContext, stage: str, source: str, needed_by: str) -> dict[str, Any]:
    """The manifest of a finished stage another stage reads; a clear error if it has not run."""
    manifest = ctx.store.read_manifest(stage, source)
    if manifest is None:
        where = "" if source == ALL_SOURCES else f" for source {source!r}"
        raise UserError(
            f"stage {needed_by} needs {stage}{where}, which has not run yet "
            f"(run `llama-recipe build` with --stages {stage})"
        )
    return manifest


_BEAM_STEP_RE = re.compile(r" \[while running '[^']*'\]")


def user_error_line(message: str) -> str | None:
    """The message of a UserError raised inside a Beam worker, from the runner's error text."""
    for line in message.splitlines():
        for name in ("InputError: ", "RecipeError: ", "UserError: "):
            if name in line:
                return _BEAM_STEP_RE.sub("", line.split(name, 1)[1]).strip()
    return None


def _counters(result: beam.runners.runner.PipelineResult, namespace: str) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace(namespace))
    totals: dict[str, int] = {}
    for c in query["counters"]:  # the same counter in several steps adds up
        # Committed values where the runner reports them; Flink reports attempted ones only.
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + int(value or 0)
    return totals


def run_stage(
    stage: Stage,
    ctx: StageContext,
    sources: Sequence[str],
    force: bool | Collection[str] = False,
) -> list[StageResult]:
    """Bring a stage up to date for some sources; one Beam pipeline for all that must run.

    `force` reruns current outputs too: True for every source, or a collection of source
    names (a stage over all sources is forced by any of them)."""
    targets = list(sources) if stage.per_source else [ALL_SOURCES]
    if not stage.needed(ctx):
        return [StageResult(stage.name, source, "not needed") for source in targets]
    if isinstance(force, bool):
        forced = set(targets) if force else set()
    else:
        forced = set(force) if stage.per_source else ({ALL_SOURCES} if force else set())
    results: dict[str, StageResult] = {}
    to_run: dict[str, str] = {}
    for source in targets:
        fingerprint = stage.fingerprint(ctx, source)
        if source not in forced and ctx.store.is_current(stage.name, source, fingerprint):
            manifest = ctx.store.read_manifest(stage.name, source) or {}
            results[source] = StageResult(stage.name, source, "skipped", manifest)
        else:
            to_run[source] = fingerprint
    for source in stage.widen(ctx, list(to_run)) if to_run else []:
        if source not in to_run:
            to_run[source] = stage.fingerprint(ctx, source)
            results.pop(source, None)
    if to_run:
        with _disk_problems(ctx, stage.name):
            _run_and_commit(stage, ctx, to_run, results)
    # The sources asked for, then any the stage widened to.
    return [results[s] for s in targets] + [r for s, r in results.items() if s not in targets]


_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _disk_error(exc: BaseException) -> OSError | None:
    """The OSError of a full or read-only disk behind `exc` (Beam wraps worker errors)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
            return exc
        for code in _DISK_ERRNOS:
            if os.strerror(code) in str(exc):
                return OSError(code, os.strerror(code))
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


@contextmanager
def _disk_problems(ctx: StageContext, stage: str) -> Iterator[None]:
    """A full or read-only disk is the environment's problem: one line, not retried."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        problem = _disk_error(exc)
        if problem is None:
            raise
        where = ctx.store.workdir
        free = ""
        if not is_uri(where) and os.path.isdir(where):
            free = f"; {shutil.disk_usage(where).free / 1e6:,.0f} MB free now"
        remedy = "it is writable" if problem.errno == errno.EROFS else "there is room"
        raise EnvironmentProblem(
            f"workdir {where}: {problem.strerror} while {stage} wrote its output{free} "
            f"(what it wrote is not committed; run again once {remedy})"
        ) from None


def _run_and_commit(
    stage: Stage, ctx: StageContext, to_run: dict[str, str], results: dict[str, StageResult]
) -> None:
    """Run the stage's pipeline for `to_run` (source: fingerprint) and commit each output."""
    if stage.passes_through(ctx):
        _pass_through(stage, ctx, to_run, results)
        return
    prepared = stage.prepare(ctx, list(to_run))
    check_held(ctx.store.workdir)
    for source in to_run:
        stage.clear(ctx, source)
    failpoint(f"{stage.name}:after-clear")
    started = time.time()
    options = pipeline_options(ctx.recipe, ctx.beam_flags)
    pipeline = beam.Pipeline(options=options)
    stage.build(pipeline, ctx, list(to_run), prepared)
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except UserError as exc:
        # Drop Beam's " [while running '<step>']" suffix: the message names the input.
        raise type(exc)(_BEAM_STEP_RE.sub("", str(exc))) from None
    except Exception as exc:
        # Runners that run workers out of process report a worker's error as text.
        line = user_error_line(str(exc))
        if line is None:
            raise
        raise InputError(line) from None
    seconds = round(time.time() - started, 3)
    failpoint(f"{stage.name}:before-manifest")  # the data is written, not yet committed
    check_held(ctx.store.workdir)  # a build that lost its lease commits nothing
    for source, fingerprint in to_run.items():
        metrics = _counters(result, stage.metrics_namespace(source))
        summary = stage.summarize(ctx, source, metrics, prepared)
        summary.update(pipeline_seconds=seconds, runner=ctx.recipe.runner.name)
        _commit(stage, ctx, source, fingerprint, summary, results)
        stage.after_commit(ctx, source, prepared)


def _pass_through(
    stage: Stage, ctx: StageContext, to_run: dict[str, str], results: dict[str, StageResult]
) -> None:
    """Commit each source's upstream documents as the stage's own: a manifest naming the
    upstream (StageStore.kept_by follows it), with its counts; no pipeline, no copy."""
    check_held(ctx.store.workdir)
    for source in to_run:
        stage.clear(ctx, source)
    failpoint(f"{stage.name}:after-clear")
    failpoint(f"{stage.name}:before-manifest")
    check_held(ctx.store.workdir)
    for source, fingerprint in to_run.items():
        upstream = stage.upstream_manifests(ctx, source)[0]
        kept = upstream["counts"]["kept"]
        summary = {
            PASSTHROUGH: stage.upstream,
            "counts": {"input": kept, "kept": kept, "rejected": 0},
            "rejected_by_reason": {},
            "kept_text_chars": upstream.get("kept_text_chars", 0),
            "pipeline_seconds": 0.0,
        }
        _commit(stage, ctx, source, fingerprint, summary, results)


def _commit(
    stage: Stage,
    ctx: StageContext,
    source: str,
    fingerprint: str,
    summary: dict[str, Any],
    results: dict[str, StageResult],
) -> None:
    """Write a source's manifest (the commit) with a new run id."""
    manifest = ctx.store.write_manifest(
        stage.name,
        source,
        {
            "fingerprint": fingerprint,
            "run_id": uuid.uuid4().hex,
            "config": stage.config(ctx, source),
            **summary,
        },
    )
    results[source] = StageResult(stage.name, source, "ran", manifest)
    failpoint(f"{stage.name}:after-manifest")
