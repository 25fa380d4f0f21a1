"""Tokenization MB/s per core against Hugging Face `tokenizers` running the same model on the
same text, and shard read throughput and random-access latency.

    .venv/bin/python benchmarks/tokenize_speed.py [--vocab-size 32000] [--repeat 3]

The model: SentencePiece BPE with LLaMA's settings (the train-tokenizer stage's function),
trained here on the real documents of ../shared/fixtures (or the samples). Ours encodes as
the tokenize stage does (SentencePiece, a batch per call); Hugging Face runs the
`tokenizer.json` train-tokenizer writes, through `tokenizers`' `encode_batch`. Both on one
thread (RAYON_NUM_THREADS=1, num_threads=1); the ids are compared document by document.

Shards: 8 shards of 8,192 rows of 2,049 uint16 tokens (LLaMA's 2048 context + 1), written
as the mix stage writes them, then read through ShardReader: sequentially in batches of 8
rows (copied into one array, as a training step does) and at random single rows.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # before `tokenizers` is imported

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from filter_speed import load_texts  # noqa: E402  (the same real documents)

from pipelines.hf_tokenizer import hf_files  # noqa: E402
from pipelines.recipe import TokenizerConfig  # noqa: E402
from pipelines.shards import ShardReader, shard_schema  # noqa: E402
from pipelines.stages.train_tokenizer import train_sentencepiece  # noqa: E402


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def tokenization(texts: list[str], vocab_size: int, repeat: int) -> None:
    import sentencepiece as spm
    from tokenizers import Tokenizer

    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "sample.txt"
        sample.write_text("\n".join(line for t in texts for line in t.splitlines() if line.strip()))
        config = TokenizerConfig(vocab_size=vocab_size, num_threads=2)
        model = train_sentencepiece([str(sample)], config)
        files = hf_files(model, 2048)
        (Path(tmp) / "tokenizer.json").write_bytes(files["tokenizer.json"])
        hf = Tokenizer.from_file(str(Path(tmp) / "tokenizer.json"))
    sp = spm.SentencePieceProcessor(model_proto=model)
    ours = sp.encode(texts, num_threads=1)
    theirs = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    t_ours = median_time(lambda: sp.encode(texts, num_threads=1), repeat)
    t_hf = median_time(lambda: hf.encode_batch(texts, add_special_tokens=False), repeat)
    tokens = sum(map(len, ours))
    print(f"{len(texts)} documents, {megabytes:.1f} MB, {tokens:,} tokens, vocabulary {vocab_size}")
    print()
    print("| tokenizer | seconds | MB/s per core | tokens/s | identical ids |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in (("ours (SentencePiece)", t_ours), ("Hugging Face tokenizers", t_hf)):
        print(
            f"| {name} | {seconds:.2f} | {megabytes / seconds:.2f} | {tokens / seconds:,.0f} "
            f"| {same}/{len(texts)} |"
        )
    print(f"\nratio (ours / Hugging Face throughput): {t_hf / t_ours:.2f}x")


def shard_reading(repeat: int) -> None:
    rows_per_shard, row_tokens, shards = 8192, 2049, 8
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        schema = shard_schema(row_tokens - 1, 32000)
        for k in range(shards):
            rows = rng.integers(0, 32000, size=(rows_per_shard, row_tokens), dtype=np.uint16)
            column = pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), row_tokens)
            with pa.ipc.new_file(str(Path(tmp) / f"shard-{k:05d}.arrow"), schema) as writer:
                writer.write_table(pa.table({"tokens": column}, schema=schema), max_chunksize=1024)
        started = time.perf_counter()
        reader = ShardReader(tmp)
        open_seconds = time.perf_counter() - started
        n = len(reader)
        gigabytes = n * row_tokens * 2 / 1e9

        def sequential() -> None:
            batch = 8
            for start in range(0, n - batch + 1, batch):
                np.stack([reader[i] for i in range(start, start + batch)])

        seconds = median_time(sequential, repeat)
        indices = rng.integers(0, n, size=20000)
        started = time.perf_counter()
        for i in indices:
            np.array(reader[int(i)])
        latency_us = (time.perf_counter() - started) / len(indices) * 1e6
        print()
        print(f"{shards} shards, {n:,} rows of {row_tokens} uint16 tokens, {gigabytes:.2f} GB")
        print()
        print("| measure | value |")
        print("|---|---:|")
        print(f"| open (memory-map {shards} shards) | {open_seconds * 1000:.1f} ms |")
        print(f"| sequential, batches of 8 rows copied | {gigabytes / seconds:.2f} GB/s |")
        print(f"| random single row, copied | {latency_us:.1f} µs |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=32000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    texts, where = load_texts()
    print(f"Text from {where}")
    tokenization(texts, args.vocab_size, args.repeat)
    shard_reading(args.repeat)


if __name__ == "__main__":
    main()
