"""train-tokenizer: SentencePiece BPE with LLaMA's settings, trained on a sample drawn across
sources in proportion to the mixture (SentencePiece trains on the driver: it is
single-process by nature)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import sentencepiece as spm
from apache_beam.io.filesystems import FileSystems

from pipelines.document import unit_hash
from pipelines.errors import UserError
from pipelines.hf_tokenizer import hf_files
from pipelines.registry import spec
from pipelines.shards import BOS_ID, EOS_ID, UNK_ID
from pipelines.stage import Stage, StageContext
from pipelines.store import ReadStage, file_metadata


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


def _lines(paths: list[str]) -> Iterator[str]:
    for path in paths:
        with FileSystems.open(path) as raw, io.TextIOWrapper(raw, encoding="utf-8") as fh:
            for line in fh:
                yield line.rstrip("\n")


def train_sentencepiece(inputs: list[str], config: Any) -> bytes:
    """A SentencePiece BPE model with LLaMA's settings, trained on the lines of text files
    (local paths or URIs); its bytes. The lines are streamed to the trainer, so the model
    names no input file: the same sample gives the same bytes on every run."""
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=_lines(inputs),
            model_writer=model,
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
    return model.getvalue()


class TrainTokenizerStage(Stage):
    name = "train-tokenizer"

    def config(self, ctx: StageContext, source: str) -> Any:
        return {
            "tokenizer": ctx.recipe.tokenizer.model_dump(mode="json"),
            "weights": ctx.recipe.weights(),
            "seed": ctx.recipe.mixture.seed,
        }

    def expand(
        self, pipeline: beam.Pipeline, ctx: StageContext, source: str, prepared: Any
    ) -> None:
        config = ctx.recipe.tokenizer
        seed = ctx.recipe.mixture.seed
        documents = spec(self.name).reads[0]  # the stage whose kept documents it samples
        branches = []
        for name, weight in ctx.recipe.weights().items():
            available = ctx.store.read_manifest(documents, name).get("kept_text_chars", 0)
            rate = min(1.0, weight * config.sample_chars / max(available, 1))
            branches.append(
                pipeline
                | f"{name}/Read" >> ReadStage(ctx.store, documents, name, columns=["id", "text"])
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
                FileSystems.join(ctx.store.tokenizer_dir(), "sample"), file_name_suffix=".txt"
            )
        )

    def summarize(
        self, ctx: StageContext, source: str, metrics: dict[str, int], prepared: Any
    ) -> dict[str, Any]:
        config = ctx.recipe.tokenizer
        sample = file_metadata(FileSystems.join(ctx.store.tokenizer_dir(), "sample*.txt"))
        sample_bytes = sum(size for _, size, _ in sample)
        if sample_bytes == 0:
            raise UserError("train-tokenizer: the sample is empty (every document was dropped?)")
        model = train_sentencepiece([path for path, _, _ in sample], config)
        ctx.store.write_bytes(ctx.store.tokenizer_model(), model)
        # What Hugging Face loads: AutoTokenizer.from_pretrained(<this folder>).
        for name, data in hf_files(model, ctx.recipe.mixture.seq_len).items():
            ctx.store.write_bytes(FileSystems.join(ctx.store.tokenizer_dir(), name), data)
        return {
            "tokenizer_sha256": hashlib.sha256(model).hexdigest(),
            "vocab_size": config.vocab_size,
            "sample_bytes": sample_bytes,
        }
