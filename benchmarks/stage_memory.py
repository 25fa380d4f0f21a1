"""Peak memory of one stage at 1x and 4x the input, on the recipe's (embedded) runner.

    .venv/bin/python benchmarks/stage_memory.py dedup [tokenize ...] [--scales 1 4]

Input: real HTML pages of the Debian documentation packages extracted under --html-root
(the Debian handbook in its languages, the libstdc++, PostgreSQL, Python, Django, GnuCash,
Git and Sphinx manuals), each page once (packages that link to another's files count once),
in a fixed pseudo-random order. Scale k takes the first k * --pages of them, so 4x is four
times as many distinct documents as 1x, with 1x among them; they are written as WARC
response records and go through the `warc` reader like crawled pages (HTML to main text,
CCNet line dedup on).

For every scale, the stages before the measured ones are built once in a workdir of that
scale; each measured stage then runs (forced) in a fresh subprocess that reports its own peak
RSS, so the number is that stage's alone: the interpreter, Beam, and whatever the stage holds.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import xxhash

ROOT = Path(__file__).resolve().parents[1]
HTML_ROOT = "/work/debs/x/usr/share/doc"
PAGES_PER_FILE = 250
SOURCE = "docs"


def pages(html_root: str) -> list[str]:
    """Every distinct HTML page under the root (by real path), in a fixed shuffled order."""
    found = glob.glob(os.path.join(html_root, "**", "*.html"), recursive=True)
    distinct = sorted({os.path.realpath(p) for p in found if os.path.isfile(p)})
    return sorted(distinct, key=lambda p: xxhash.xxh3_64_intdigest(p.encode()))


def write_warcs(paths: list[str], directory: Path) -> list[str]:
    """The pages as gzipped WARC response records, PAGES_PER_FILE per file."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for start in range(0, len(paths), PAGES_PER_FILE):
        name = directory / f"pages-{start // PAGES_PER_FILE:04d}.warc.gz"
        with open(name, "wb") as fh:
            writer = WARCWriter(fh, gzip=True)
            for path in paths[start : start + PAGES_PER_FILE]:
                body = Path(path).read_bytes()
                http = StatusAndHeaders(
                    "200 OK",
                    [("Content-Type", "text/html; charset=utf-8")],
                    protocol="HTTP/1.1",
                )
                url = "https://docs.example.org" + path
                record = writer.create_warc_record(
                    url, "response", payload=io.BytesIO(body), http_headers=http
                )
                writer.write_record(record)
        files.append(str(name))
    return files


def write_recipe(workdir: Path, inputs: list[str], scale: int) -> Path:
    import yaml

    recipe = {
        "name": f"stage-memory-{scale}x",
        "workdir": str(workdir / "work"),
        "sources": {
            SOURCE: {
                "format": "warc",
                "inputs": inputs,
                "weight": 1,
                # The CommonCrawl chain: the Gopher rules, C4's, and CCNet's perplexity with
                # cut-offs at percentiles of the source (the sample's Wikipedia KenLM model).
                "filters": [
                    "gopher_repetition",
                    "gopher_quality",
                    {"name": "c4", "require_terminal_punctuation": False},
                    {
                        "name": "perplexity",
                        "model": str(ROOT / "samples/lm/wikipedia.arpa"),
                        "tokenizer": str(ROOT / "samples/lm/wikipedia.sp.model"),
                        "keep": ["head", "middle"],
                    },
                ],
            }
        },
        "tokenizer": {"vocab_size": 8000, "sample_chars": 5_000_000},
        # The mixture grows with the input, so that mix has k times the work at k x.
        "mixture": {"total_tokens": 2_000_000 * scale, "seq_len": 512, "rows_per_shard": 1024},
    }
    path = workdir / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def run_one(recipe_path: str, stage: str, force: bool) -> None:
    """In the child: run one stage; print its seconds, this process's CPU seconds and peak
    RSS (and its children's, for runners that start workers)."""
    from pipelines.recipe import load_recipe
    from pipelines.stages import STAGE_CLASSES, StageContext, run_stage

    recipe = load_recipe(recipe_path)
    ctx = StageContext.from_recipe(recipe)
    started = time.perf_counter()
    run_stage(STAGE_CLASSES[stage](), ctx, list(recipe.sources), force=force)
    seconds = time.perf_counter() - started
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    peak_mb = max(own.ru_maxrss, children.ru_maxrss) / 1024
    result = {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": peak_mb}
    print(json.dumps({**result, "own_peak_mb": own_peak_mb()}))


def own_peak_mb() -> float | None:
    """This process's peak RSS since it started its program (VmHWM): unlike ru_maxrss, which
    Linux carries over an exec, it does not start at the size of the parent it was forked
    from (a benchmark that holds a corpus in memory)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child(recipe: Path, stage: str, force: bool, core: str | None = None) -> dict:
    """One stage run in a fresh process (pinned to `core` with taskset when given)."""
    pin = ["taskset", "-c", core] if core is not None and shutil.which("taskset") else []
    result = subprocess.run(
        [*pin, sys.executable, __file__, "--run", stage, "--recipe", str(recipe)]
        + (["--force"] if force else []),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise SystemExit(f"{stage} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def input_size(workdir: Path, stage: str, inputs: list[str]) -> tuple[float, int]:
    """(MB the stage reads, documents it reads): the WARC files for extract, the token
    files for mix, else the text the upstream stage kept (from its manifest)."""
    from pipelines.registry import spec
    from pipelines.store import StageStore, file_metadata

    store = StageStore(str(workdir / "work"))
    if stage == "extract":
        docs = (store.read_manifest("extract", SOURCE) or {}).get("counts", {}).get("input", 0)
        return sum(os.path.getsize(p) for p in inputs) / 1e6, docs
    if stage == "mix":
        size = sum(s for _, s, _ in file_metadata(store.parts("tokenize", SOURCE, ".arrow")))
        docs = (store.read_manifest("tokenize", SOURCE) or {}).get("counts", {}).get("kept", 0)
        return size / 1e6, docs
    upstream = spec(stage).reads[0]
    manifest = store.read_manifest(upstream, SOURCE) or {}
    return manifest.get("kept_text_chars", 0) / 1e6, manifest.get("counts", {}).get("kept", 0)


def main() -> None:
    from pipelines.registry import STAGES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", metavar="STAGE", help=", ".join(STAGES))
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--pages", type=int, default=2750, help="HTML pages at 1x")
    parser.add_argument("--html-root", default=HTML_ROOT)
    parser.add_argument("--workdir", default="/tmp/stage-memory", help="kept between runs")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--recipe", help=argparse.SUPPRESS)
    parser.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_one(args.recipe, args.run, args.force)
        return
    if not args.stages or set(args.stages) - set(STAGES):
        parser.error(f"name one or more stages of {', '.join(STAGES)}")
    pool = pages(args.html_root)
    needed = args.pages * max(args.scales)
    if len(pool) < needed:
        parser.error(f"{len(pool)} pages under {args.html_root}, {needed} needed")
    last = max(STAGES.index(s) for s in args.stages)
    rows = {}
    for scale in args.scales:
        workdir = Path(args.workdir) / f"{scale}x-{args.pages}"
        inputs = sorted(glob.glob(str(workdir / "input" / "*.warc.gz")))
        if not inputs:
            inputs = write_warcs(pool[: args.pages * scale], workdir / "input")
        recipe = write_recipe(workdir, inputs, scale)
        for stage in STAGES[: last + 1]:
            measured = stage in args.stages
            result = child(recipe, stage, force=measured)
            if measured:
                megabytes, docs = input_size(workdir, stage, inputs)
                rows[stage, scale] = (megabytes, docs, result)
    first = args.scales[0]
    print(
        f"| stage | scale | input MB | docs | seconds | CPU s | peak RSS MB | ratio to {first}x |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for stage in args.stages:
        base = rows[stage, first][2]["peak_mb"]
        for scale in args.scales:
            megabytes, docs, run = rows[stage, scale]
            cells = [stage, f"{scale}x", f"{megabytes:.1f}", str(docs), f"{run['seconds']:.1f}"]
            cells += [f"{run['cpu_seconds']:.1f}", f"{run['peak_mb']:.0f}"]
            cells.append(f"{run['peak_mb'] / base:.2f}x")
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
