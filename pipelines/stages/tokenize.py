"""tokenize: token ids per document (Arrow IPC), with the tokenizer train-tokenizer wrote."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import sentencepiece as spm
from apache_beam.io.filesystems import FileSystems

from pipelines.document import token_dtype, token_schema
from pipelines.stage import Stage, StageContext
from pipelines.store import KEPT, REJECTED, ReadStage, WriteStage
from pipelines.tables import RowDecisions, rejected_table


class TokenizeFn(beam.DoFn):
    def __init__(self, model_path: str, vocab_size: int, namespace: str):
        self.model_path = model_path
        self.vocab_size = vocab_size
        self.namespace = namespace

    def setup(self) -> None:
        with FileSystems.open(self.model_path) as fh:
            self.processor = spm.SentencePieceProcessor(model_proto=fh.read())
        self.tokens = beam.metrics.Metrics.counter(self.namespace, "tokens")

    def process(self, table: pa.Table) -> Iterator[Any]:
        texts = table.column("text").to_pylist()
        ids = self.processor.encode([t or "" for t in texts], num_threads=os.cpu_count() or 1)
        keep = [len(x) > 0 for x in ids]
        kept_ids = [x for x in ids if x]
        if kept_ids:
            kept = table.filter(pa.array(keep))
            self.tokens.inc(sum(len(x) for x in kept_ids))
            yield pa.table(
                {
                    "id": kept.column("id"),
                    "source": kept.column("source"),
                    "num_tokens": pa.array([len(x) for x in kept_ids], pa.int32()),
                    "tokens": pa.array(kept_ids, pa.list_(token_dtype(self.vocab_size))),
                },
                schema=token_schema(self.vocab_size),
            )
        n = len(keep)
        rejected = rejected_table(
            table, RowDecisions(keep, ["tokenize:no_tokens"] * n, [None] * n), "tokenize"
        )
        if rejected is not None:
            yield beam.pvalue.TaggedOutput(REJECTED, rejected)


class TokenizeStage(Stage):
    name = "tokenize"
    kept_suffix = ".arrow"

    def config(self, ctx: StageContext, source: str) -> Any:
        return {"vocab_size": ctx.recipe.tokenizer.vocab_size}

    def expand(
        self, pipeline: beam.Pipeline, ctx: StageContext, source: str, prepared: Any
    ) -> None:
        vocab_size = ctx.recipe.tokenizer.vocab_size
        encode = TokenizeFn(ctx.store.tokenizer_model(), vocab_size, self.metrics_namespace(source))
        outputs = (
            pipeline
            | f"{source}/Read" >> ReadStage(ctx.store, self.upstream, source)
            | f"{source}/Encode" >> beam.ParDo(encode).with_outputs(REJECTED, main=KEPT)
        )
        {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED]} | f"{source}/Write" >> WriteStage(
            ctx.store, self.name, source, "tokens", token_schema(vocab_size)
        )
