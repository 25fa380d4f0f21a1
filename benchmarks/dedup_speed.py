"""MinHash near-dedup, end to end, against datatrove's four MinHash stages and a datasketch
in-memory loop, on the same real documents: MB/s per core, peak memory, precision/recall
against brute-force exact Jaccard; and our time at 1x, 4x and 16x the input.

    .venv/bin/python benchmarks/dedup_speed.py [--peers] [--scales 1 4 16]

Input: the machine's real licence and copyright texts (/usr/share/doc/*/copyright and
/usr/share/common-licenses/*), one document each: packages built from one source share
copyright files word for word or nearly, which makes an honest near-duplicate corpus.
Larger scales add copies of the corpus whose every line carries a copy-specific word (new
documents, as far from the originals as unrelated ones).

Each contender runs in its own process (peak RSS is its own, the corpus in memory included);
all on one core: ours = the `dedup` stage through Beam's FnApiRunner, Parquet in (the quality
stage's output format) to Parquet out, exact + near dedup at 0.8, the stage itself in a
process of its own whose peak RSS is reported apart ("stage peak"); datatrove 0.10.1 =
MinhashDedupSignature, Buckets, Cluster, Filter with its defaults (14 bands x 8 rows,
5-grams), JSONL in and out;
datasketch 2.0.0 = MinHash(128) + MinHashLSH(0.8) over 5-gram shingles, query then insert.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 0.8


def corpus(scale: int) -> list[dict[str, str]]:
    paths = sorted(glob.glob("/usr/share/doc/*/copyright")) + sorted(
        glob.glob("/usr/share/common-licenses/*")
    )
    docs = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except (IsADirectoryError, PermissionError):
            continue
        if text.strip():
            docs.append({"id": path, "text": text})
    out = list(docs)
    for k in range(1, scale):
        out += [
            {
                "id": f"{d['id']}#copy{k}",
                "text": "\n".join(f"{line} w{k}x" for line in d["text"].split("\n")),
            }
            for d in docs
        ]
    return out


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def run_ours(docs, workdir: Path):
    """The corpus written as the quality stage's output, then the dedup stage run in a
    process of its own (benchmarks/stage_memory.py), whose peak RSS is the stage's alone."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    from flows.recipe import load_recipe
    from pipelines.document import document_schema
    from pipelines.stages import StageContext
    from pipelines.store import match_files

    recipe_path = workdir / "recipe.yaml"
    recipe_path.write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "workdir": str(workdir / "work"),
                "sources": {"docs": {"format": "jsonl", "inputs": ["x"], "weight": 1}},
                "mixture": {"total_tokens": 1000},
            }
        )
    )
    ctx = StageContext.from_recipe(load_recipe(recipe_path))
    schema = document_schema("quality")
    rows = [{"id": d["id"], "source": "docs", "text": d["text"], "origin": d["id"]} for d in docs]
    directory = Path(ctx.store.dir("quality", "docs"))
    directory.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), directory / "part-0.parquet")
    ctx.store.write_manifest(
        "quality", "docs", {"run_id": "bench", "counts": {"input": len(rows), "kept": len(rows)}}
    )
    del rows
    stage = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stage_memory.py")]
        + ["--run", "dedup", "--recipe", str(recipe_path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    run = json.loads(stage.stdout.strip().splitlines()[-1])
    removed = set()
    for path in match_files(ctx.store.rejects("dedup", "docs")):
        removed |= set(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    return run["seconds"], removed, run["peak_mb"]


def run_datatrove(docs, workdir: Path):
    import datatrove.utils.hashes.xxhash as datatrove_xxhash
    import xxhash
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    # datatrove passes str to xxhash, which the installed xxhash refuses: encode first, the
    # same hash datatrove means.
    datatrove_xxhash.xxhash64 = lambda data: xxhash.xxh64_intdigest(
        data.encode("utf-8") if isinstance(data, str) else data
    )
    datatrove_xxhash.xxhash32 = lambda data: xxhash.xxh32_intdigest(
        data.encode("utf-8") if isinstance(data, str) else data
    )
    data = workdir / "input"
    data.mkdir()
    with open(data / "docs.jsonl", "w") as fh:
        for d in docs:
            fh.write(json.dumps(d) + "\n")
    config = MinhashConfig()
    started = time.perf_counter()
    steps = [
        ([JsonlReader(str(data)), MinhashDedupSignature(str(workdir / "sigs"), config=config)], 1),
        (
            [MinhashDedupBuckets(str(workdir / "sigs"), str(workdir / "buckets"), config=config)],
            config.num_buckets,
        ),  # fmt: skip
        (
            [MinhashDedupCluster(str(workdir / "buckets"), str(workdir / "remove"), config=config)],
            1,
        ),
        (
            [
                JsonlReader(str(data)),
                MinhashDedupFilter(
                    str(workdir / "remove"),
                    exclusion_writer=JsonlWriter(str(workdir / "removed"), compression=None),
                ),
            ],
            1,
        ),
    ]
    for i, (pipeline, tasks) in enumerate(steps):
        LocalPipelineExecutor(
            pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(workdir / f"logs{i}")
        ).run()
    seconds = time.perf_counter() - started
    removed = set()
    for path in glob.glob(str(workdir / "removed" / "*.jsonl")):
        with open(path) as fh:
            removed |= {json.loads(line)["id"] for line in fh}
    return seconds, removed, None


def run_datasketch(docs, workdir: Path):
    from datasketch import MinHash, MinHashLSH

    from dedup.minhash import normalize_for_shingles

    started = time.perf_counter()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=128)
    removed = set()
    for d in docs:
        words = normalize_for_shingles(d["text"]).split()
        n = min(5, len(words))
        m = MinHash(num_perm=128)
        m.update_batch([" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)])
        if lsh.query(m):
            removed.add(d["id"])
        else:
            lsh.insert(d["id"], m)
    return time.perf_counter() - started, removed, None


def contender(name: str, scale: int) -> None:
    docs = corpus(scale)
    with tempfile.TemporaryDirectory() as tmp:
        run = {"ours": run_ours, "datatrove": run_datatrove, "datasketch": run_datasketch}[name]
        seconds, removed, stage_mb = run(docs, Path(tmp))
    out = {"seconds": seconds, "removed": sorted(removed), "peak_mb": peak_mb()}
    print(json.dumps({**out, "stage_mb": stage_mb}))


def ground_truth(docs) -> tuple[dict[str, set[str]], int]:
    """Each document's neighbours at exact Jaccard >= 0.8 (same shingles as ours), and how
    many documents the greedy keep rule removes."""
    import numpy as np

    from dedup.cluster import greedy
    from dedup.minhash import exact_jaccard, shingle_hashes

    shingles = {d["id"]: shingle_hashes(d["text"]) for d in docs}
    ids = sorted(shingles)
    sizes = np.array([shingles[i].size for i in ids])
    neighbours = {i: set() for i in ids}
    edges = []
    for x, a in enumerate(ids):
        for y in range(x + 1, len(ids)):
            small, large = sorted((sizes[x], sizes[y]))
            if small < THRESHOLD * large:  # J <= small/large: cannot reach the threshold
                continue
            b = ids[y]
            similarity = exact_jaccard(shingles[a], shingles[b])
            if similarity >= THRESHOLD:
                neighbours[a].add(b)
                neighbours[b].add(a)
                edges.append((a, b, similarity))
    decisions = greedy({i: (i,) for i in ids}, edges)
    return neighbours, sum(1 for v in decisions.values() if v is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", action="store_true", help="also run datatrove and datasketch")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        contender(args.contender, args.scale)
        return
    base = corpus(1)
    megabytes = sum(len(d["text"].encode()) for d in base) / 1e6
    neighbours, should_go = ground_truth(base)
    print(f"{len(base)} documents, {megabytes:.1f} MB; brute force: {should_go} to remove")
    print()
    columns = (
        "contender scale MB seconds MB/s_per_core peak_RSS_MB stage_peak_RSS_MB removed "
        "precision recall"
    )
    print("| " + " | ".join(c.replace("_", " ") for c in columns.split()) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = ["ours", "datasketch", "datatrove"] if args.peers else ["ours"]
    for name in names:
        for scale in args.scales if name == "ours" else [1]:
            result = subprocess.run(
                [sys.executable, __file__, "--contender", name, "--scale", str(scale)],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            if result.returncode != 0:
                print(f"| {name} | {scale} | failed: {result.stderr.strip().splitlines()[-1]} |")
                continue
            out = json.loads(result.stdout.strip().splitlines()[-1])
            removed = set(out["removed"])
            mb = megabytes * scale
            rate = mb / out["seconds"]
            row = [name, f"{scale}x", f"{mb:.1f}", f"{out['seconds']:.1f}", f"{rate:.2f}"]
            stage_mb = f"{out['stage_mb']:.0f}" if out["stage_mb"] else "–"
            row += [f"{out['peak_mb']:.0f}", stage_mb, str(len(removed))]
            if scale == 1:
                kept = {d["id"] for d in base} - removed
                correct = sum(1 for i in removed if neighbours[i] & kept)
                precision = correct / len(removed) if removed else 1.0
                row += [f"{precision:.4f}", f"{min(correct, should_go) / should_go:.4f}"]
            else:
                row += ["–", "–"]
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
