"""extract: raw corpus files in, one Document per record out (Parquet), in the format's reader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.assets import fetch_cache
from pipelines.beam_io import in_one_process
from pipelines.document import with_rejection
from pipelines.errors import InputError
from pipelines.fetch import (
    Expected,
    FetchError,
    crawl_inputs,
    fetch,
    is_remote_url,
    parse_checksums,
)
from pipelines.recipe import ExtractConfig, FetchConfig, SourceConfig
from pipelines.sources import ASSEMBLERS, SPLIT_READERS, Partial, Rejected, read_or_scan
from pipelines.sources.base import base_name, document_problem, file_rejection, render_batch
from pipelines.sources.stackexchange import site_of
from pipelines.stage import Stage, StageContext
from pipelines.store import KEPT, REJECTED, WriteStage, file_metadata, file_problems

DOCS, REJECTS, PARTIALS, RAW = KEPT, REJECTED, "partials", "raw"


def expand_inputs(ctx: StageContext, source: str) -> list[tuple[str, int | None, float | None]]:
    """Every input of a source as (location, size_bytes, last_updated): files matched by its
    paths, globs and URIs, its http(s) URLs (size unknown until fetched), and the files its
    CommonCrawl `crawl` selects. A pattern that matches nothing is an error."""
    spec = ctx.recipe.sources[source]
    inputs: list[tuple[str, int | None, float | None]] = []
    for index, pattern in enumerate(spec.inputs):
        if is_remote_url(pattern):
            inputs.append((pattern, None, None))
            continue
        try:
            matched = file_metadata(pattern)
        except Exception as exc:  # Beam raises BeamIOError for unknown schemes and such
            raise InputError(
                f"sources.{source}.inputs[{index}]: cannot list {pattern} ({exc})"
            ) from None
        if not matched:
            raise InputError(f"sources.{source}.inputs[{index}]: no file matches {pattern}")
        inputs.extend(matched)
    if spec.format == "stackexchange":
        inputs = select_sites(inputs, spec.sites, spec.max_sites)
    if spec.crawl is not None:
        try:
            urls = crawl_inputs(spec.crawl, fetch_cache(ctx), ctx.recipe.fetch)
        except FetchError as exc:
            raise InputError(f"sources.{source}.crawl: {exc}") from None
        inputs.extend((url, None, None) for url in urls)
    return sorted(set(inputs), key=lambda item: item[0])


def select_sites(
    inputs: list[tuple[str, int | None, float | None]],
    sites: list[str] | None,
    max_sites: int | None,
) -> list[tuple[str, int | None, float | None]]:
    """StackExchange dumps of the named sites, or of the largest `max_sites` sites by size
    (sites whose size is unknown before download, given as URLs, are all kept)."""
    if sites is not None:
        return [item for item in inputs if site_of(item[0]) in sites]
    if max_sites is None:
        return inputs
    sizes: dict[str, int] = {}
    for location, size, _ in inputs:
        if size is not None:
            sizes[site_of(location)] = sizes.get(site_of(location), 0) + size
    largest = set(sorted(sizes, key=lambda site: (-sizes[site], site))[:max_sites])
    return [item for item in inputs if item[1] is None or site_of(item[0]) in largest]


def published_checksums(ctx: StageContext, source: str) -> dict[str, tuple[str, str]]:
    """{file name: (algorithm, hex)} from the checksum lists a source names."""
    sums: dict[str, tuple[str, str]] = {}
    for index, url in enumerate(ctx.recipe.sources[source].checksums):
        try:
            listing = fetch(url, fetch_cache(ctx), ctx.recipe.fetch)
        except FetchError as exc:
            raise InputError(f"sources.{source}.checksums[{index}]: {exc}") from None
        with FileSystems.open(listing, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            sums.update(parse_checksums(fh.read().decode("utf-8", "replace")))
    return sums


class RouteRecords(beam.DoFn):
    """Reads one file and sends documents, rejections, partial records and batches of raw
    records (of a two-phase reader) to their outputs."""

    def __init__(
        self,
        source: str,
        spec: SourceConfig,
        limits: ExtractConfig,
        fetch_config: FetchConfig,
        cache_root: str,
        checksums: dict[str, tuple[str, str]],
        split: bool = True,
    ):
        self.source, self.split = source, split
        self.fmt = spec.format
        # GitHub: the licences a file's repository may carry.
        self.licenses = set(spec.licenses) if spec.format == "github" else None
        self.limits = limits
        self.fetch_config = fetch_config
        self.cache_root = cache_root
        self.checksums = checksums

    def process(self, path: str) -> Iterator[Any]:
        if is_remote_url(path):
            expected = Expected(digest=self.checksums.get(base_name(path)))
            try:
                path = fetch(path, self.cache_root, self.fetch_config, expected)
            except FetchError as exc:
                failed = file_rejection(path, self.source, "extract:fetch_failed", str(exc))
                yield from route([failed], self.limits)
                return
        # A two-phase reader only scans here: its raw records come out in batches to render.
        records = read_or_scan(path, self.source, self.fmt, self.limits, self.split)
        if self.licenses is not None:
            records = (self.check_license(r) for r in records)
        yield from route(records, self.limits, f"extract/{self.source}")

    def check_license(self, record: Any) -> Any:
        if isinstance(record, dict):
            family = json.loads(record["meta"] or "{}").get("license")
            if family not in self.licenses:
                return Rejected(record, "extract:license", family or "no licence")
        return record


def route(records, limits: ExtractConfig, namespace: str | None = None) -> Iterator[Any]:
    """Documents to the main output, rejections, partial and raw records to theirs; the damaged
    input bytes that rejections stand for are counted (`skipped_bytes` in the manifest)."""
    for record in records:
        if isinstance(record, Partial):
            yield beam.pvalue.TaggedOutput(PARTIALS, (record.key, record.value))
        elif isinstance(record, list):
            yield beam.pvalue.TaggedOutput(RAW, record)
        elif isinstance(record, Rejected):
            if record.skipped_bytes and namespace:
                beam.metrics.Metrics.counter(namespace, "skipped_bytes").inc(record.skipped_bytes)
            yield beam.pvalue.TaggedOutput(
                REJECTS,
                with_rejection(
                    record.row,
                    record.reason,
                    record.detail,
                    value=record.value,
                    threshold=record.threshold,
                ),
            )
        elif problem := document_problem(record, limits):
            yield beam.pvalue.TaggedOutput(REJECTS, with_rejection(record, *problem))
        else:
            yield record


class ExtractStage(Stage):
    name = "extract"

    def __init__(self) -> None:
        self._listed: dict[str, list[tuple[str, int | None, float | None]]] = {}

    def config(self, ctx: StageContext, source: str) -> Any:
        spec = ctx.recipe.sources[source]
        # Everything about the source that decides what extract reads and keeps.
        reading = spec.model_dump(
            mode="json", exclude={"weight", "languages", "min_language_score", "filters"}
        )
        return {**reading, "limits": ctx.recipe.extract.model_dump(mode="json")}

    def inputs_identity(self, ctx: StageContext, source: str) -> Any:
        return self.inputs(ctx, source)

    def inputs(self, ctx: StageContext, source: str) -> list[tuple[str, int | None, float | None]]:
        """The source's inputs, listed once per run (globs, crawl listings)."""
        if source not in self._listed:
            self._listed[source] = expand_inputs(ctx, source)
        return self._listed[source]

    def summarize(
        self, ctx: StageContext, source: str, metrics: dict[str, int], prepared: Any
    ) -> dict[str, Any]:
        summary = super().summarize(ctx, source, metrics, prepared)
        # Damaged or empty input files, named in the manifest so nobody has to dig for them.
        summary["file_problems"] = [
            {"reason": reason, "detail": detail}
            for reason, detail in file_problems(ctx.store.rejects(self.name, source))
        ]
        return summary

    def expand(
        self, pipeline: beam.Pipeline, ctx: StageContext, source: str, prepared: Any
    ) -> None:
        fmt = ctx.recipe.sources[source].format
        files = [location for location, _, _ in self.inputs(ctx, source)]
        # One worker in this process reads a file in one pass (a shuffle would sit in memory).
        split = fmt in SPLIT_READERS and not in_one_process(pipeline.options)
        read = RouteRecords(
            source,
            ctx.recipe.sources[source],
            ctx.recipe.extract,
            ctx.recipe.fetch,
            fetch_cache(ctx),
            published_checksums(ctx, source),
            split,
        )
        routed = (
            pipeline
            | f"{source}/ListFiles" >> beam.Create(files)
            | f"{source}/SpreadFiles" >> beam.Reshuffle()
            | f"{source}/Read" >> beam.ParDo(read).with_outputs(PARTIALS, REJECTS, RAW, main=DOCS)
        )
        outputs = {KEPT: routed[DOCS], REJECTED: routed[REJECTS]}
        limits, more = ctx.recipe.extract, {}
        if split:  # one file's records rendered on many workers
            render = SPLIT_READERS[fmt][1]
            more["rendered"] = (
                routed[RAW]
                | f"{source}/SpreadRecords" >> beam.Reshuffle()
                | f"{source}/Render"
                >> beam.FlatMap(
                    lambda batch: route(render_batch(render, batch, limits), limits)
                ).with_outputs(REJECTS, main=DOCS)
            )
        if fmt in ASSEMBLERS:
            assemble = ASSEMBLERS[fmt]
            more["assembled"] = (
                routed[PARTIALS]
                | f"{source}/GroupParts" >> beam.GroupByKey()
                | f"{source}/Assemble"
                >> beam.FlatMap(
                    lambda kv, src=source: route(assemble(src, kv[0], kv[1], limits), limits)
                ).with_outputs(REJECTS, main=DOCS)
            )
        for name, stream in more.items():
            outputs[f"{KEPT}/{name}"], outputs[f"{REJECTED}/{name}"] = stream[DOCS], stream[REJECTS]
        outputs | f"{source}/Write" >> WriteStage(ctx.store, self.name, source, "rows")
