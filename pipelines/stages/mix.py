"""mix: take p_s * T tokens from every source (whole epochs, then an exact part of one more),
shuffle deterministically, pack documents into rows of seq_len + 1 tokens, write Arrow IPC
shards and `mixture.json` into a new version folder (see pipelines/shards.py), keeping the
newest `mixture.keep_versions` committed versions. The arithmetic is in pipelines/mixture.py,
the transforms in pipelines/transforms/mixing.py: the mixture is planned on document keys,
ids and token counts, and the token files are read again to fill the shards.
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
from pipelines.mixture import SourcePlan, available_tokens, plan_mixture
from pipelines.shards import MIXTURE_JSON, SHARD_GLOB
from pipelines.stage import Stage, StageContext
from pipelines.store import delete_tree, match_files
from pipelines.transforms.mixing import (
    Packing,
    PackRows,
    ShardLayout,
    SourceInstances,
    SourceSampling,
    WriteShards,
    token_counts,
)


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
        for folder in sorted({path.rsplit("/", 1)[0] for path in shards}):
            if not FileSystems.exists(FileSystems.join(folder, MIXTURE_JSON)):
                leftovers.append(folder)
        return leftovers

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

    def expand(
        self, pipeline: beam.Pipeline, ctx: StageContext, source: str, prepared: str
    ) -> None:
        mixture = ctx.recipe.mixture
        sources = list(ctx.recipe.sources)
        paths, instances = [], []
        for index, (name, plan) in enumerate(self.plans(ctx).items()):
            found = match_files(ctx.store.parts("tokenize", name, ".arrow"))
            numbered = [(path, len(paths) + k) for k, path in enumerate(found)]
            paths += found
            docs = (
                pipeline
                | f"{name}/Files" >> beam.Create(numbered)
                | f"{name}/Documents" >> beam.FlatMapTuple(token_counts)
            )
            sampling = SourceSampling(plan, index, mixture.seed)
            instances.append(docs | f"{name}/Sample" >> SourceInstances(sampling))
        packing = Packing(
            sources,
            mixture.seq_len,
            self.num_groups(ctx),
            mixture.seed,
            self.metrics_namespace(source),
        )
        layout = ShardLayout(
            self.version_dir(ctx, prepared),
            mixture.seq_len,
            ctx.recipe.tokenizer.vocab_size,
            mixture.rows_per_shard,
        )
        packed = instances | "AllInstances" >> beam.Flatten() | "Pack" >> PackRows(packing)
        files = pipeline | "TokenFiles" >> beam.Create([(i, None) for i in range(len(paths))])
        {"file": files, **packed} | "Shards" >> WriteShards(paths, layout, packing)

    def summarize(
        self, ctx: StageContext, source: str, metrics: dict[str, int], prepared: str
    ) -> dict[str, Any]:
        plans = self.plans(ctx)
        tokenizer = ctx.store.read_manifest("train-tokenizer") or {}
        shards, actual, documents = [], dict.fromkeys(plans, 0), dict.fromkeys(plans, 0)
        for name in plans:
            actual[name] = metrics.get(f"tokens/{name}", 0)
            documents[name] = metrics.get(f"documents/{name}", 0)
        version_dir = self.version_dir(ctx, prepared)
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
            json.dumps({**mixture, "version": prepared}, indent=2, sort_keys=True).encode(),
        )
        return {"mixture": mixture, "version": prepared, "shards": version_dir}
