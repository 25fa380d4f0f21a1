"""train-tokenizer: SentencePiece BPE with LLaMA's settings, trained on a sample drawn across
sources in proportion to the mixture; tokenize: token ids per document as Arrow IPC."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import sentencepiece as spm
from apache_beam.io.filesystems import FileSystems

from pipelines.beam_io import write_arrow_ipc
from pipelines.document import reject_schema, token_dtype, token_schema, unit_hash
from pipelines.errors import UserError
from pipelines.hf_tokenizer import hf_files
from pipelines.stages.base import Stage, StageContext, require_manifest
from pipelines.stages.filtering import REJECTED, read_tables, rejected_table
from pipelines.store import ALL_SOURCES, match_files

TOKENIZER_MODEL = "tokenizer.model"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2  # LLaMA's special ids


def sample_lines(text: str, max_bytes: int) -> Iterator[str]:
    """The non-blank lines of a document, cut to SentencePiece's sentence length limit."""
    for line in text.splitlines():
        if not line.strip():
            continue
        while len(line.encode("utf-8")) > max_bytes:
            cut = max_bytes // 4  # 4 bytes per character at most: always under the limit
            yield line[:cut]
            line = line[cut:]
        yield line


def train_sentencepiece(inputs: list[str], config: Any, workdir: str) -> bytes:
    """A SentencePiece BPE model with LLaMA's settings, trained on text files; its bytes."""
    prefix = os.path.join(workdir, "tokenizer")
    try:
        spm.SentencePieceTrainer.train(
            input=inputs,
            model_prefix=prefix,
            model_type="bpe",
            vocab_size=config.vocab_size,
            # LLaMA: digits split, unknown bytes fall back to byte pieces, text kept as is.
            split_digits=True,
            byte_fallback=True,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,
            add_dummy_prefix=True,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_id=-1,
            character_coverage=config.character_coverage,
            max_sentence_length=config.max_sentence_length,
            num_threads=config.num_threads,
            shuffle_input_sentence=True,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise UserError(f"train-tokenizer: SentencePiece failed: {exc}") from None
    with open(prefix + ".model", "rb") as fh:
        return fh.read()


class TrainTokenizerStage(Stage):
    name = "train-tokenizer"
    per_source = False

    def config(self, ctx: StageContext, source: str) -> Any:
        return {
            "tokenizer": ctx.recipe.tokenizer.model_dump(mode="json"),
            "weights": ctx.recipe.weights(),
            "seed": ctx.recipe.mixture.seed,
        }

    def upstream_manifests(self, ctx: StageContext, source: str) -> list[dict[str, Any]]:
        return [require_manifest(ctx, "dedup", name, self.name) for name in ctx.recipe.sources]

    def expand(self, pipeline: beam.Pipeline, ctx: StageContext, source: str) -> None:
        config = ctx.recipe.tokenizer
        seed = ctx.recipe.mixture.seed
        branches = []
        for name, weight in ctx.recipe.weights().items():
            available = ctx.store.read_manifest("dedup", name).get("kept_text_chars", 0)
            rate = min(1.0, weight * config.sample_chars / max(available, 1))
            branches.append(
                read_tables(pipeline, ctx, "dedup", name, columns=["id", "text"])
                | f"{name}/Rows" >> beam.FlatMap(lambda t: t.to_pylist())
                | f"{name}/Sample"
                >> beam.Filter(lambda d, r=rate: unit_hash(seed, "tokenizer-sample", d["id"]) < r)
                | f"{name}/Lines"
                >> beam.FlatMap(lambda d: sample_lines(d["text"] or "", config.max_sentence_length))
            )
        (
            branches
            | "MergeSample" >> beam.Flatten()
            | "WriteSample"
            >> beam.io.WriteToText(
                FileSystems.join(ctx.store.dir(self.name), "sample"), file_name_suffix=".txt"
            )
        )

    def summarize(self, ctx: StageContext, source: str, metrics: dict[str, int]) -> dict[str, Any]:
        config = ctx.recipe.tokenizer
        sample_files = match_files(FileSystems.join(ctx.store.dir(self.name), "sample*.txt"))
        with tempfile.TemporaryDirectory() as tmp:
            local_inputs = []
            for i, path in enumerate(sample_files):
                local = os.path.join(tmp, f"sample-{i}.txt")
                with open(local, "wb") as out:
                    out.write(ctx.store.read_bytes(path))
                local_inputs.append(local)
            sample_bytes = sum(os.path.getsize(p) for p in local_inputs)
            if sample_bytes == 0:
                raise UserError(
                    "train-tokenizer: the sample is empty (every document was dropped?)"
                )
            model = train_sentencepiece(local_inputs, config, tmp)
        ctx.store.write_bytes(FileSystems.join(ctx.store.dir(self.name), TOKENIZER_MODEL), model)
        # What Hugging Face loads: AutoTokenizer.from_pretrained(<this folder>).
        for name, data in hf_files(model, ctx.recipe.mixture.seq_len).items():
            ctx.store.write_bytes(FileSystems.join(ctx.store.dir(self.name), name), data)
        return {
            "tokenizer_sha256": hashlib.sha256(model).hexdigest(),
            "vocab_size": config.vocab_size,
            "sample_bytes": sample_bytes,
        }


def load_tokenizer(ctx: StageContext) -> spm.SentencePieceProcessor:
    path = FileSystems.join(ctx.store.dir("train-tokenizer"), TOKENIZER_MODEL)
    return spm.SentencePieceProcessor(model_proto=ctx.store.read_bytes(path))


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
        rejected = rejected_table(table, keep, ["tokenize:no_tokens"] * n, [None] * n, "tokenize")
        if rejected is not None:
            yield beam.pvalue.TaggedOutput(REJECTED, rejected)


class TokenizeStage(Stage):
    name = "tokenize"
    upstream = "dedup"
    kept_suffix = ".arrow"

    def config(self, ctx: StageContext, source: str) -> Any:
        return {"vocab_size": ctx.recipe.tokenizer.vocab_size}

    def inputs_identity(self, ctx: StageContext, source: str) -> Any:
        tokenizer = require_manifest(ctx, "train-tokenizer", ALL_SOURCES, self.name)
        return [*super().inputs_identity(ctx, source), tokenizer["run_id"]]

    def expand(self, pipeline: beam.Pipeline, ctx: StageContext, source: str) -> None:
        vocab_size = ctx.recipe.tokenizer.vocab_size
        model_path = FileSystems.join(ctx.store.dir("train-tokenizer"), TOKENIZER_MODEL)
        outputs = read_tables(pipeline, ctx, "dedup", source) | f"{source}/Encode" >> beam.ParDo(
            TokenizeFn(model_path, vocab_size, self.metrics_namespace(source))
        ).with_outputs(REJECTED, main="kept")
        outputs["kept"] | write_arrow_ipc(
            ctx.store.dir(self.name, source), token_schema(vocab_size), f"{source}/WriteTokens"
        )
        outputs[REJECTED] | f"{source}/WriteRejects" >> beam.io.WriteToParquetBatched(
            FileSystems.join(ctx.store.dir(self.name, source), "rejects", "part"),
            reject_schema("tokenize"),
            file_name_suffix=".parquet",
        )
