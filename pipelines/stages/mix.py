"""mix: hold out each source's validation documents (`mixture.validation`), take p_s * T
tokens from the rest of every source (whole epochs, then an exact part of one more), shuffle
deterministically, pack documents into rows of seq_len + 1 tokens, write Arrow IPC shards
(the held-out documents' apart) and `mixture.json` into a new version folder (see
pipelines/shards.py), keeping the newest `mixture.keep_versions` committed versions. The
arithmetic is in pipelines/mixture.py, the transforms in pipelines/transforms/mixing.py and
validation.py: the mixture is planned on document keys, ids and token counts, and the token
files are read again to fill the shards.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipelines.errors import UserError
from pipelines.mixture import (
    SourcePlan,
    available_tokens,
    held_out_fraction,
    plan_mixture,
    split_total,
)
from pipelines.shards import MIXTURE_JSON, SHARD_GLOB, VALIDATION, VALIDATION_IDS, validation_path
from pipelines.stage import Stage, StageContext
from pipelines.store import delete_tree, match_files
from pipelines.transforms.mixing import (
    Packing,
    PackRows,
    ShardLayout,
    ShardSet,
    SourceInstances,
    SourceSampling,
    WriteShards,
    token_counts,
)
from pipelines.transforms.validation import HoldOut, HoldOutConfig, PackHeldOut


class MixStage(Stage):
    name = "mix"

    def config(self, ctx: StageContext, source: str) -> Any:
        return {
            # How many old versions are kept changes nothing in the new one.
            "mixture": ctx.recipe.mixture.model_dump(mode="json", exclude={"keep_versions"}),
            "weights": ctx.recipe.weights(),
        }

    def prepare(self, ctx: StageContext, sources: Sequence[str]) -> str:
        """The name of the version this run writes (versions sort by the time they were made)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return f"v{stamp}-{uuid.uuid4().hex[:8]}"

    def version_dir(self, ctx: StageContext, version: str) -> str:
        return FileSystems.join(ctx.store.mix_dir(), version)

    def clear(self, ctx: StageContext, source: str) -> None:
        """Forget the committed mix (its manifest) and whatever a killed run left half
        written; committed versions stay for the training runs that read them."""
        ctx.store.forget(self.name, source)
        for leftover in self._uncommitted(ctx):
            delete_tree(leftover)

    def after_commit(self, ctx: StageContext, source: str, prepared: str) -> None:
        """Old versions beyond `mixture.keep_versions` go (the newest first stay)."""
        directory = ctx.store.mix_dir()
        committed = sorted(
            path.rsplit("/", 2)[-2]
            for path in match_files(FileSystems.join(directory, "*", MIXTURE_JSON))
        )
        others = [v for v in committed if v != prepared]
        keep = ctx.recipe.mixture.keep_versions - 1
        old = others[: max(len(others) - keep, 0)]
        for version in old:
            delete_tree(self.version_dir(ctx, version))

    def _uncommitted(self, ctx: StageContext) -> list[str]:
        """Version folders without their mixture.json, and shards of the unversioned layout."""
        directory = ctx.store.mix_dir()
        leftovers = match_files(FileSystems.join(directory, SHARD_GLOB))
        leftovers += match_files(FileSystems.join(directory, MIXTURE_JSON))
        shards = match_files(FileSystems.join(directory, "*", SHARD_GLOB))
        held_out = match_files(FileSystems.join(directory, "*", VALIDATION, "*", "*"))
        folders = {path.rsplit("/", 1)[0] for path in shards}
        folders |= {path.rsplit("/", 3)[0] for path in held_out}
        for folder in sorted(folders):
            if not FileSystems.exists(FileSystems.join(folder, MIXTURE_JSON)):
                leftovers.append(folder)
        return leftovers

    def available(self, ctx: StageContext) -> dict[str, int]:
        """Every source's tokens with BOS and EOS, held-out documents included."""
        names = ctx.recipe.sources
        return {n: available_tokens(ctx.store.read_manifest("tokenize", n)) for n in names}

    def held_out(self, ctx: StageContext) -> dict[str, float]:
        """The fraction of each source's documents held out for validation (0: none)."""
        available, mixture = self.available(ctx), ctx.recipe.mixture
        return {
            name: held_out_fraction(mixture.validation_amount(name), tokens)
            for name, tokens in available.items()
        }

    def plans(self, ctx: StageContext, held_out_tokens: dict[str, int]) -> dict[str, SourcePlan]:
        """The plans the pipeline made: from the tokens each source kept for training."""
        training = {n: a - held_out_tokens.get(n, 0) for n, a in self.available(ctx).items()}
        return plan_mixture(ctx.recipe.mixture.total_tokens, ctx.recipe.weights(), training)

    def num_groups(self, ctx: StageContext, tokens: float) -> int:
        mixture = ctx.recipe.mixture
        return max(1, round(tokens / (mixture.rows_per_shard * (mixture.seq_len + 1))))

    def expand(
        self, pipeline: beam.Pipeline, ctx: StageContext, source: str, prepared: str
    ) -> None:
        mixture, namespace = ctx.recipe.mixture, self.metrics_namespace(source)
        sources = list(ctx.recipe.sources)
        whole = self.plans(ctx, {})  # as if nothing were held out: each source has tokens
        targets = split_total(mixture.total_tokens, ctx.recipe.weights())
        fractions, available = self.held_out(ctx), self.available(ctx)
        paths, instances, held_out = [], [], {}
        for index, name in enumerate(sources):
            found = match_files(ctx.store.parts("tokenize", name, ".arrow"))
            numbered = [(path, len(paths) + k) for k, path in enumerate(found)]
            paths += found
            docs = (
                pipeline
                | f"{name}/Files" >> beam.Create(numbered)
                | f"{name}/Documents" >> beam.FlatMapTuple(token_counts)
            )
            if fractions[name] > 0:  # the plan waits for what the held-out documents leave
                config = HoldOutConfig(
                    name, fractions[name], mixture.seed, namespace, targets[name]
                )
                split = docs | f"{name}/HoldOut" >> HoldOut(config)
                docs, held_out[name], plan = split["training"], split["validation"], split["plan"]
            else:
                plan = pipeline | f"{name}/Plan" >> beam.Create([whole[name]])
            sampling = SourceSampling(name, index, mixture.seed)
            instances.append(docs | f"{name}/Sample" >> SourceInstances(sampling, plan))
        groups = self.num_groups(ctx, mixture.total_tokens)
        packing = Packing(sources, mixture.seq_len, groups, mixture.seed, namespace)
        version_dir = self.version_dir(ctx, prepared)
        packed = instances | "AllInstances" >> beam.Flatten() | "Pack" >> PackRows(packing)
        validation, apart = {}, f"{namespace}/held"  # tokens/<source>: the training shards'
        for name, docs in held_out.items():
            groups = self.num_groups(ctx, fractions[name] * available[name])
            layout = self.layout(ctx, validation_path(version_dir, name))
            held = Packing([name], mixture.seq_len, groups, mixture.seed, apart, layout.directory)
            validation[name] = ShardSet(layout, held)
            for key, rows in (docs | f"{name}/Pack" >> PackHeldOut(held)).items():
                packed[f"{name}/{key}"] = rows
        files = pipeline | "TokenFiles" >> beam.Create([(i, None) for i in range(len(paths))])
        shards = WriteShards(paths, self.layout(ctx, version_dir), packing, validation)
        {"file": files, **packed} | "Shards" >> shards

    def layout(self, ctx: StageContext, directory: str) -> ShardLayout:
        mixture = ctx.recipe.mixture
        vocab_size = ctx.recipe.tokenizer.vocab_size
        return ShardLayout(directory, mixture.seq_len, vocab_size, mixture.rows_per_shard)

    def summarize(
        self, ctx: StageContext, source: str, metrics: dict[str, int], prepared: str
    ) -> dict[str, Any]:
        fractions = {name: f for name, f in self.held_out(ctx).items() if f > 0}
        held_out = {name: metrics.get(f"held_out_tokens/{name}", 0) for name in fractions}
        plans = self.plans(ctx, held_out)
        tokenizer = ctx.store.read_manifest("train-tokenizer") or {}
        actual = {name: metrics.get(f"tokens/{name}", 0) for name in plans}
        documents = {name: metrics.get(f"documents/{name}", 0) for name in plans}
        version_dir = self.version_dir(ctx, prepared)
        shards = self._shard_records(ctx, version_dir)
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
                    "available_tokens": plan.available_tokens,  # held-out documents' excluded
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
        if fractions:
            mixture[VALIDATION] = {}
        for name, fraction in fractions.items():
            directory = validation_path(version_dir, name)
            held = self._shard_records(ctx, directory)
            ids = match_files(FileSystems.join(directory, f"{VALIDATION_IDS}-*"))
            mixture[VALIDATION][name] = {
                "fraction": fraction,  # of the documents, chosen by a hash of their id
                "documents": metrics.get(f"held_out_documents/{name}", 0),
                "tokens": held_out[name],  # of the documents, with BOS and EOS
                "rows": sum(s["rows"] for s in held),
                "shards": held,
                "ids": [path.rsplit("/", 1)[-1] for path in ids],
            }
        if not shards:
            raise UserError("mix: no shard was written (total_tokens smaller than one row?)")
        # Written after every shard: it marks the version complete.
        ctx.store.write_bytes(
            FileSystems.join(version_dir, MIXTURE_JSON),
            json.dumps({**mixture, "version": prepared}, indent=2, sort_keys=True).encode(),
        )
        return {"mixture": mixture, "version": prepared, "shards": version_dir}

    def _shard_records(self, ctx: StageContext, directory: str) -> list[dict[str, Any]]:
        """File, rows, bytes and sha256 of every shard in a folder, by name."""
        records = []
        for path in match_files(FileSystems.join(directory, SHARD_GLOB)):
            data = ctx.store.read_bytes(path)
            reader = pa.ipc.open_file(data)
            rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
            records.append(
                {
                    "file": path.rsplit("/", 1)[-1],
                    "rows": rows,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
        return records
