"""mix: take p_s * T tokens from every source (whole epochs, then an exact part of one more),
shuffle deterministically, pack documents into rows of seq_len + 1 tokens, write Arrow IPC
shards and `mixture.json` into a new version folder (`mix/_all/<version>/`; see
pipelines/shards.py), keeping the newest `mixture.keep_versions` committed versions.

Everything that grows with the corpus runs in Beam: the partial epoch is cut with a token-mass
histogram over a deterministic per-document hash (a fixed-size combine), only the documents of
the one boundary bucket meet on one key, and packing happens per shard group.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipelines.beam_io import read_arrow_ipc
from pipelines.document import unit_hash
from pipelines.errors import UserError
from pipelines.shards import MIXTURE_JSON, SHARD_GLOB, shard_schema
from pipelines.stages.base import Stage, StageContext, require_manifest
from pipelines.stages.tokenizer import BOS_ID, EOS_ID
from pipelines.store import ALL_SOURCES, match_files

HISTOGRAM_BINS = 1 << 16


@dataclass(frozen=True)
class SourcePlan:
    source: str
    available_tokens: int  # document tokens plus BOS and EOS per document
    target_tokens: int
    full_epochs: int
    remainder_tokens: int  # taken from one more, partial epoch

    @property
    def epochs(self) -> float:
        return self.target_tokens / self.available_tokens if self.available_tokens else 0.0


def split_total(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer token targets that sum to `total` exactly (largest remainders)."""
    raw = {name: total * w for name, w in weights.items()}
    targets = {name: math.floor(v) for name, v in raw.items()}
    short = total - sum(targets.values())
    for name in sorted(raw, key=lambda n: (targets[n] - raw[n], n))[:short]:
        targets[name] += 1
    return targets


def plan_mixture(
    total_tokens: int, weights: dict[str, float], available: dict[str, int]
) -> dict[str, SourcePlan]:
    plans = {}
    for name, target in split_total(total_tokens, weights).items():
        have = available[name]
        if have <= 0:
            raise UserError(f"mix: source {name!r} has no tokens left to sample from")
        full, remainder = divmod(target, have)
        plans[name] = SourcePlan(name, have, target, full, remainder)
    return plans


def available_tokens(tokenize_manifest: dict[str, Any]) -> int:
    """Tokens a source offers the mix: its documents' tokens plus BOS and EOS for each."""
    return tokenize_manifest.get("tokens", 0) + 2 * tokenize_manifest["counts"]["kept"]


def doc_cost(num_tokens: int) -> int:
    return num_tokens + 2  # BOS + document + EOS


class TokenHistogram(beam.CombineFn):
    """Token mass per hash bucket: a fixed-size accumulator whatever the corpus size."""

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(HISTOGRAM_BINS, dtype=np.int64)

    def add_input(self, acc: np.ndarray, element: tuple[int, int]) -> np.ndarray:
        acc[element[0]] += element[1]
        return acc

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return np.sum(list(accumulators), axis=0)

    def extract_output(self, acc: np.ndarray) -> np.ndarray:
        return acc


def boundary(histogram: np.ndarray, remainder: int) -> tuple[int, int]:
    """(bucket, tokens still wanted inside it) where the partial epoch's budget runs out."""
    cumulative = np.cumsum(histogram)
    bucket = int(np.searchsorted(cumulative, remainder, side="left"))
    before = int(cumulative[bucket - 1]) if bucket > 0 else 0
    return bucket, remainder - before


def bucket_of(u: float) -> int:
    return min(int(u * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)


def take_prefix(
    docs: list[tuple[float, str, np.ndarray]], budget: int
) -> Iterator[tuple[str, np.ndarray, bool]]:
    """Documents in hash order until `budget` tokens; the last one cut to fit exactly.

    Yields (id, tokens, complete). A cut document keeps its BOS but gets no EOS, since it
    does not end there.
    """
    for _, doc_id, tokens in sorted(docs, key=lambda d: (d[0], d[1])):
        if budget <= 0:
            return
        cost = doc_cost(len(tokens))
        if cost <= budget:
            budget -= cost
            yield doc_id, tokens, True
        else:
            if budget >= 2:
                yield doc_id, tokens[: budget - 1], False
            return


def pack(
    instances: list[tuple[float, int, str, np.ndarray, bool]], row_tokens: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate documents (in hash order) with BOS/EOS and cut into rows.

    Returns (rows [n, row_tokens], tokens per source index, documents per source index);
    the tail that does not fill a row is left out.
    """
    n_sources = 1 + max((x[1] for x in instances), default=0)
    stream, owner, docs_per_source = stream_of(instances, n_sources)
    rows, tokens_per_source, _ = cut_rows(stream, owner, row_tokens, n_sources)
    return rows, tokens_per_source, docs_per_source


def stream_of(
    instances: list[tuple[float, int, str, np.ndarray, bool]], n_sources: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Documents (in hash order) with BOS/EOS as one token stream, the source index of every
    token, and documents per source index."""
    instances = sorted(instances, key=lambda x: (x[0], x[2]))
    pieces, owners = [], []
    docs_per_source = np.zeros(n_sources, dtype=np.int64)
    for _, source_index, _, tokens, complete in instances:
        piece = np.concatenate([[BOS_ID], tokens, [EOS_ID]] if complete else [[BOS_ID], tokens])
        pieces.append(piece.astype(np.uint32))
        owners.append(np.full(len(piece), source_index, dtype=np.int16))
        docs_per_source[source_index] += 1
    stream = np.concatenate(pieces) if pieces else np.zeros(0, np.uint32)
    owner = np.concatenate(owners) if owners else np.zeros(0, np.int16)
    return stream, owner, docs_per_source


def cut_rows(
    stream: np.ndarray, owner: np.ndarray, row_tokens: int, n_sources: int
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """(rows [n, row_tokens], tokens per source index in them, the tail (stream, owner) that
    does not fill a row)."""
    n_rows = len(stream) // row_tokens
    used = n_rows * row_tokens
    tokens_per_source = np.bincount(owner[:used], minlength=n_sources)
    return (
        stream[:used].reshape(n_rows, row_tokens),
        tokens_per_source,
        (stream[used:], owner[used:]),
    )


class PackGroup(beam.DoFn):
    """Packs one group of document instances into rows; what does not fill a row goes to the
    tail, where the tails of all groups are packed together (so at most one row's worth of
    tokens is lost in the whole mixture, not one per group)."""

    TAIL = "tail"

    def __init__(self, sources: list[str], seq_len: int, namespace: str):
        self.sources = sources
        self.seq_len = seq_len
        self.namespace = namespace

    def count(self, tokens: np.ndarray, docs: np.ndarray | None = None) -> None:
        for i, source in enumerate(self.sources):
            if tokens[i]:
                beam.metrics.Metrics.counter(self.namespace, f"tokens/{source}").inc(int(tokens[i]))
            if docs is not None and docs[i]:
                beam.metrics.Metrics.counter(self.namespace, f"documents/{source}").inc(
                    int(docs[i])
                )

    def process(self, group: tuple[int, Iterable[tuple]]) -> Iterator[Any]:
        index, instances = group
        stream, owner, docs = stream_of(list(instances), len(self.sources))
        rows, tokens, tail = cut_rows(stream, owner, self.seq_len + 1, len(self.sources))
        self.count(tokens, docs)
        yield index, rows
        if len(tail[0]):
            yield beam.pvalue.TaggedOutput(self.TAIL, (0, (index, tail)))


class PackTails(PackGroup):
    """The groups' tails, in group order, packed into the rows of one more group."""

    def __init__(self, sources: list[str], seq_len: int, namespace: str, index: int):
        super().__init__(sources, seq_len, namespace)
        self.index = index

    def process(self, group: tuple[int, Iterable[tuple]]) -> Iterator[Any]:
        _, tails = group
        tails = sorted(tails, key=lambda t: t[0])
        stream = np.concatenate([t[1][0] for t in tails])
        owner = np.concatenate([t[1][1] for t in tails])
        # What is left over here, less than one row, is all the mixture loses.
        rows, tokens, _ = cut_rows(stream, owner, self.seq_len + 1, len(self.sources))
        self.count(tokens)
        yield self.index, rows


def _offsets(counts: list[tuple[int, int]]) -> dict[int, int]:
    """The global index of each group's first row: groups in index order."""
    offsets, start = {}, 0
    for index, n in sorted(counts):
        offsets[index] = start
        start += n
    return offsets


def _to_shards(
    packed: tuple[int, np.ndarray], counts: list[tuple[int, int]], rows_per_shard: int
) -> Iterator[tuple[int, tuple[int, np.ndarray]]]:
    """A group's rows cut where shard boundaries fall: (shard, (global first row, rows))."""
    index, rows = packed
    start = _offsets(counts)[index]
    done = 0
    while done < len(rows):
        shard, within = divmod(start + done, rows_per_shard)
        take = min(rows_per_shard - within, len(rows) - done)
        yield shard, (start + done, rows[done : done + take])
        done += take


class WriteShard(beam.DoFn):
    """Writes one shard: its rows in global order, exactly `rows_per_shard` (the last one may
    hold fewer)."""

    def __init__(self, directory: str, seq_len: int, vocab_size: int):
        self.directory = directory
        self.seq_len = seq_len
        self.vocab_size = vocab_size

    def process(self, shard: tuple[int, Iterable[tuple[int, np.ndarray]]]) -> Iterator[int]:
        index, pieces = shard
        rows = np.concatenate([r for _, r in sorted(pieces, key=lambda p: p[0])])
        schema = shard_schema(self.seq_len, self.vocab_size)
        value_type = schema.field("tokens").type.value_type
        numpy_type = np.uint16 if value_type == pa.uint16() else np.uint32
        flat = pa.array(rows.reshape(-1).astype(numpy_type), type=value_type)
        column = pa.FixedSizeListArray.from_arrays(flat, self.seq_len + 1)
        buffer = io.BytesIO()
        with pa.ipc.new_file(buffer, schema) as writer:
            writer.write_table(pa.table({"tokens": column}, schema=schema), max_chunksize=1024)
        with FileSystems.create(FileSystems.join(self.directory, f"shard-{index:05d}.arrow")) as fh:
            fh.write(buffer.getvalue())
        yield len(rows)


class MixStage(Stage):
    name = "mix"
    per_source = False

    def config(self, ctx: StageContext, source: str) -> Any:
        return {
            # How many old versions are kept changes nothing in the new one.
            "mixture": ctx.recipe.mixture.model_dump(mode="json", exclude={"keep_versions"}),
            "weights": ctx.recipe.weights(),
        }

    def before_run(self, ctx: StageContext, sources: Sequence[str]) -> None:
        # Versions sort by the time they were made.
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.version = f"v{stamp}-{uuid.uuid4().hex[:8]}"

    def version_dir(self, ctx: StageContext, version: str) -> str:
        return FileSystems.join(ctx.store.dir(self.name), version)

    def clear(self, ctx: StageContext, source: str) -> None:
        """Forget the committed mix (its manifest) and whatever a killed run left half
        written; committed versions stay for the training runs that read them."""
        ctx.store.forget(self.name, source)
        for leftover in self._uncommitted(ctx):
            FileSystems.delete([leftover])

    def after_commit(self, ctx: StageContext, source: str) -> None:
        """Old versions beyond `mixture.keep_versions` go (the newest first stay)."""
        directory = ctx.store.dir(self.name)
        committed = sorted(
            path.rsplit("/", 2)[-2]
            for path in match_files(FileSystems.join(directory, "*", MIXTURE_JSON))
        )
        others = [v for v in committed if v != self.version]
        keep = ctx.recipe.mixture.keep_versions - 1
        old = others[: max(len(others) - keep, 0)]
        if old:
            FileSystems.delete([self.version_dir(ctx, v) for v in old])

    def _uncommitted(self, ctx: StageContext) -> list[str]:
        """Version folders without their mixture.json, and shards of the unversioned layout."""
        directory = ctx.store.dir(self.name)
        leftovers = match_files(FileSystems.join(directory, SHARD_GLOB))
        leftovers += match_files(FileSystems.join(directory, MIXTURE_JSON))
        shards = match_files(FileSystems.join(directory, "*", SHARD_GLOB))
        for folder in sorted({path.rsplit("/", 1)[0] for path in shards}):
            if not FileSystems.exists(FileSystems.join(folder, MIXTURE_JSON)):
                leftovers.append(folder)
        return leftovers

    def upstream_manifests(self, ctx: StageContext, source: str) -> list[dict[str, Any]]:
        needed = [("train-tokenizer", ALL_SOURCES)] + [("tokenize", s) for s in ctx.recipe.sources]
        return [require_manifest(ctx, stage, name, self.name) for stage, name in needed]

    def plans(self, ctx: StageContext) -> dict[str, SourcePlan]:
        available = {}
        for name in ctx.recipe.sources:
            available[name] = available_tokens(ctx.store.read_manifest("tokenize", name))
        return plan_mixture(ctx.recipe.mixture.total_tokens, ctx.recipe.weights(), available)

    def num_groups(self, ctx: StageContext) -> int:
        mixture = ctx.recipe.mixture
        return max(
            1, round(mixture.total_tokens / (mixture.rows_per_shard * (mixture.seq_len + 1)))
        )

    def expand(self, pipeline: beam.Pipeline, ctx: StageContext, source: str) -> None:
        mixture = ctx.recipe.mixture
        seed, groups = mixture.seed, self.num_groups(ctx)
        sources = list(ctx.recipe.sources)
        branches = []
        for source_index, (name, plan) in enumerate(self.plans(ctx).items()):
            files = match_files(ctx.store.parts("tokenize", name, ".arrow"))
            docs = (
                pipeline
                | f"{name}/ListTokenFiles" >> beam.Create(files)
                | f"{name}/ReadTokens" >> beam.FlatMap(read_arrow_ipc, columns=["id", "tokens"])
                | f"{name}/Documents"
                >> beam.FlatMap(
                    lambda t: zip(
                        t.column("id").to_pylist(),
                        (np.asarray(x.values) for x in t.column("tokens")),
                        strict=True,
                    )
                )
            )
            # Whole epochs: every document once per epoch (each epoch gets a fresh order
            # from the hashes that include the epoch number).
            if plan.full_epochs:
                branches.append(
                    docs
                    | f"{name}/WholeEpochs"
                    >> beam.FlatMap(
                        lambda d, n=plan.full_epochs, s=name, i=source_index: (
                            (s, i, epoch, d[0], d[1], True) for epoch in range(n)
                        )
                    )
                )
            if plan.remainder_tokens:
                epoch = plan.full_epochs
                hashed = docs | f"{name}/HashPartial" >> beam.Map(
                    lambda d, e=epoch, s=name: (unit_hash(seed, "select", s, e, d[0]), d[0], d[1])
                )
                histogram = (
                    hashed
                    | f"{name}/Mass" >> beam.Map(lambda h: (bucket_of(h[0]), doc_cost(len(h[2]))))
                    | f"{name}/Histogram" >> beam.CombineGlobally(TokenHistogram())
                )
                selected = hashed | f"{name}/Select" >> beam.FlatMap(
                    _select_partial,
                    remainder=plan.remainder_tokens,
                    histogram=beam.pvalue.AsSingleton(histogram),
                ).with_outputs("boundary", main="inside")
                cut = (
                    selected["boundary"]
                    | f"{name}/KeyBoundary" >> beam.Map(lambda h: (0, h))
                    | f"{name}/GroupBoundary" >> beam.GroupByKey()
                    | f"{name}/CutBoundary"
                    >> beam.FlatMap(
                        _cut_boundary,
                        remainder=plan.remainder_tokens,
                        histogram=beam.pvalue.AsSingleton(histogram),
                    )
                )
                branches.append(
                    (selected["inside"], cut)
                    | f"{name}/MergePartial" >> beam.Flatten()
                    | f"{name}/TagPartial"
                    >> beam.Map(
                        lambda x, e=epoch, s=name, i=source_index: (s, i, e, x[0], x[1], x[2])
                    )
                )
        packed = (
            branches
            | "AllInstances" >> beam.Flatten()
            | "AssignGroup"
            >> beam.Map(
                lambda x: (
                    int(unit_hash(seed, "group", x[0], x[2], x[3]) * groups),
                    (unit_hash(seed, "order", x[0], x[2], x[3]), x[1], x[3], x[4], x[5]),
                )
            )
            | "GroupPacks" >> beam.GroupByKey()
            | "Pack"
            >> beam.ParDo(
                PackGroup(sources, mixture.seq_len, self.metrics_namespace(ALL_SOURCES))
            ).with_outputs(PackGroup.TAIL, main="rows")
        )
        tails = (
            packed[PackGroup.TAIL]
            | "GroupTails" >> beam.GroupByKey()
            | "PackTails"
            >> beam.ParDo(
                PackTails(sources, mixture.seq_len, self.metrics_namespace(ALL_SOURCES), groups)
            )
        )
        packed = (packed["rows"], tails) | "AllRows" >> beam.Flatten()
        counts = packed | "RowCounts" >> beam.Map(lambda p: (p[0], len(p[1])))
        (
            packed
            | "CutIntoShards"
            >> beam.FlatMap(
                _to_shards,
                counts=beam.pvalue.AsList(counts),
                rows_per_shard=mixture.rows_per_shard,
            )
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards"
            >> beam.ParDo(
                WriteShard(
                    self.version_dir(ctx, self.version),
                    mixture.seq_len,
                    ctx.recipe.tokenizer.vocab_size,
                )
            )
        )

    def summarize(self, ctx: StageContext, source: str, metrics: dict[str, int]) -> dict[str, Any]:
        plans = self.plans(ctx)
        tokenizer = ctx.store.read_manifest("train-tokenizer") or {}
        shards, actual, documents = [], dict.fromkeys(plans, 0), dict.fromkeys(plans, 0)
        for name in plans:
            actual[name] = metrics.get(f"tokens/{name}", 0)
            documents[name] = metrics.get(f"documents/{name}", 0)
        version_dir = self.version_dir(ctx, self.version)
        for path in match_files(FileSystems.join(version_dir, SHARD_GLOB)):
            data = ctx.store.read_bytes(path)
            reader = pa.ipc.open_file(data)
            rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
            shards.append(
                {
                    "file": path.rsplit("/", 1)[-1],
                    "rows": rows,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
        total_actual = sum(actual.values())
        weights = ctx.recipe.weights()
        mixture = {
            "seq_len": ctx.recipe.mixture.seq_len,
            "row_tokens": ctx.recipe.mixture.seq_len + 1,
            "total_tokens_target": ctx.recipe.mixture.total_tokens,
            "total_tokens_packed": total_actual,
            "rows": sum(s["rows"] for s in shards),
            "rows_per_shard": ctx.recipe.mixture.rows_per_shard,
            "seed": ctx.recipe.mixture.seed,
            "tokenizer_sha256": tokenizer.get("tokenizer_sha256"),
            "vocab_size": ctx.recipe.tokenizer.vocab_size,
            "recipe_sha256": ctx.recipe.sha256(),
            "sources": {
                name: {
                    "available_tokens": plan.available_tokens,
                    "target_proportion": weights[name],
                    "target_tokens": plan.target_tokens,
                    "actual_tokens": actual[name],
                    "actual_proportion": actual[name] / total_actual if total_actual else 0.0,
                    "epochs": plan.epochs,
                    "documents_used": documents[name],
                }
                for name, plan in plans.items()
            },
            "shards": shards,
        }
        if not shards:
            raise UserError("mix: no shard was written (total_tokens smaller than one row?)")
        # Written after every shard: it marks the version complete.
        ctx.store.write_bytes(
            FileSystems.join(version_dir, MIXTURE_JSON),
            json.dumps({**mixture, "version": self.version}, indent=2, sort_keys=True).encode(),
        )
        return {"mixture": mixture, "version": self.version, "shards": version_dir}


def _select_partial(
    hashed: tuple[float, str, np.ndarray], remainder: int, histogram: np.ndarray
) -> Iterator[Any]:
    bucket, _ = boundary(histogram, remainder)
    u, doc_id, tokens = hashed
    mine = bucket_of(u)
    if mine < bucket:
        yield doc_id, tokens, True
    elif mine == bucket:
        yield beam.pvalue.TaggedOutput("boundary", hashed)


def _cut_boundary(
    group: tuple[int, Iterable[tuple]], remainder: int, histogram: np.ndarray
) -> Iterator[tuple[str, np.ndarray, bool]]:
    _, budget = boundary(histogram, remainder)
    yield from take_prefix(list(group[1]), budget)
