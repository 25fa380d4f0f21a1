"""The CommonCrawl path against datatrove's FineWeb-like chain: same WARC input, one core each.

    .venv/bin/python benchmarks/commoncrawl.py make-input build/cc-bench [--megabytes 320]
    .venv/bin/python benchmarks/commoncrawl.py run build/cc-bench [--files N] [--only TOOL]

`make-input` downloads Debian's HTML documentation packages with `apt-get download` (PostgreSQL,
the Debian Administrator's Handbook in its many languages, Python, Django, libstdc++'s Doxygen
reference, Git, Sphinx, GnuCash), unpacks them with `dpkg-deb -x` and writes every HTML page
once, as an HTTP 200 response record, into gzipped WARC files of about 32 MB of records each,
plus the real CommonCrawl excerpt from ../shared/fixtures when it is there. `--files N` runs
on the first N files only (the scaling rows).

`run` times, each pinned to one core with `taskset` and in its own process tree:
- datatrove 0.10.1 (the `bench` extra), FineWeb's chain: WarcReader, Trafilatura, fastText
  lid.176 English at 0.65, Gopher repetition, Gopher quality, C4 (without the terminal
  punctuation rule), then its four MinHash stages (5-grams, 14 buckets of 8 hashes);
- `llama-recipe build --sources web` of the same chain (extract..dedup: resiliparse, lid.176 at
  0.65, Gopher repetition and quality, C4 without terminal punctuation, exact and MinHash
  5-gram near dedup at 0.8, no line dedup), its whole process tree: the CLI, the temporary
  Prefect server and the Beam pipelines.

CPU seconds are the user+system time of each whole process tree (every descendant is reaped
by its parent, so `RUSAGE_CHILDREN` sees it), MB/s is raw (uncompressed) WARC per CPU second.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT.parent / "shared/fixtures/commoncrawl/resiliparse-CC-MAIN-2020-34-excerpt.warc.gz"
PACKAGES = [
    "postgresql-doc-15",
    "debian-handbook",
    "python3.11-doc",
    "python-django-doc",
    "libstdc++-12-doc",
    "git-doc",
    "sphinx-doc",
    "gnucash-docs",
]
FILE_BYTES = 32_000_000  # uncompressed records per WARC file

RECIPE = """\
name: cc-bench
workdir: {workdir}
runner: {{name: FnApiRunner, options: {{}}}}
sources:
  web:
    format: warc
    inputs: {inputs}
    weight: 67
    languages: [en]
    min_language_score: 0.65
    dedup: {{lines: false}}
    filters:
      - gopher_repetition
      - gopher_quality
      - {{name: c4, require_terminal_punctuation: false}}
  other:  # a second source, never built: `--sources web` stops after dedup
    format: c4
    inputs: [{workdir}/none-*.json.gz]
    weight: 33
dedup: {{exact: true, near: true, threshold: 0.8, ngram: 5}}
mixture: {{total_tokens: 1000000, seq_len: 512}}
"""


def make_input(out: Path, megabytes: float) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    out.mkdir(parents=True, exist_ok=True)
    debs = out / "debs"
    debs.mkdir(exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True)
    tree = out / "tree"
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    pages = sorted(
        p
        for p in tree.rglob("*")
        if p.suffix in (".html", ".htm") and p.is_file() and not p.is_symlink()
    )
    limit, written, index = megabytes * 1e6, 0, 0
    warc = None
    file_bytes = 0
    for page in pages:
        if written >= limit:
            break
        if warc is None or file_bytes >= FILE_BYTES:
            if warc is not None:
                warc.close()
            index += 1
            warc = open(out / f"docs-{index:03d}.warc.gz", "wb")
            writer = WARCWriter(warc, gzip=True)
            file_bytes = 0
        payload = page.read_bytes()
        relative = page.relative_to(tree / "usr/share/doc")
        uri = f"https://docs.debian.example/{relative.as_posix()}"
        http = StatusAndHeaders(
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(payload)))],
            protocol="HTTP/1.1",
        )
        record = writer.create_warc_record(
            uri, "response", payload=io.BytesIO(payload), http_headers=http
        )
        writer.write_record(record)
        size = len(payload) + 400  # payload and headers, roughly
        written += size
        file_bytes += size
    if warc is not None:
        warc.close()
    if FIXTURE.exists():
        shutil.copy(FIXTURE, out / "zz-commoncrawl-excerpt.warc.gz")
    shutil.rmtree(tree)
    print(f"{len(list(out.glob('*.warc.gz')))} WARC files, {raw_megabytes(out):.1f} MB raw")


def warc_files(folder: Path, files: int | None) -> list[Path]:
    found = sorted(folder.glob("*.warc.gz"))
    return found[:files] if files else found


def raw_megabytes(folder: Path, files: int | None = None) -> float:
    total = 0
    for path in warc_files(folder, files):
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                total += len(chunk)
    return total / 1e6


CORE = "0"  # the core every tool is pinned to (--core)
# Prefect's database, kept between runs as a user's ~/.prefect is: its creation (the schema
# migrations, 4-5 CPU s) happens once per machine, not once per build, so it is done untimed.
PREFECT_HOME = ROOT / "build/cc-bench-prefect"


def warm_prefect_home() -> None:
    env = {**os.environ, "PREFECT_HOME": str(PREFECT_HOME)}
    warm = "from flows.server import prefect_api\nwith prefect_api():\n    pass\n"
    subprocess.run([sys.executable, "-c", warm], check=True, env=env, cwd=ROOT)


def timed(
    command: list[str],
    env: dict[str, str] | None = None,
    pin: bool = True,
    stdout: int | None = None,
) -> dict[str, float]:
    """CPU seconds (user + system), wall seconds and the peak RSS of any one process of a whole
    process tree, pinned to the --core core unless `pin` is false (os.wait4 reports the child
    and every descendant it waited for)."""
    started = time.perf_counter()
    pinned = ["taskset", "-c", CORE] if pin else []
    child = subprocess.Popen([*pinned, *command], env=env, stdout=stdout)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command)
    cpu = usage.ru_utime + usage.ru_stime
    return {"cpu_s": cpu, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def run_ours(files: list[Path], work: Path) -> dict[str, float]:
    recipe = work / "recipe.yaml"
    recipe.write_text(
        RECIPE.format(workdir=work / "store", inputs=json.dumps([str(p) for p in files]))
    )
    env = {**os.environ, "PREFECT_HOME": str(PREFECT_HOME)}
    command = [str(ROOT / ".venv/bin/llama-recipe"), "build", str(recipe), "--sources", "web"]
    result = timed(command, env)
    from pipelines.store import StageStore

    manifest = StageStore(str(work / "store")).read_manifest("dedup", "web")
    result["kept"] = manifest["counts"]["kept"]
    return result


def run_datatrove(files: list[Path], work: Path) -> dict[str, float]:
    for path in files:
        (work / "warc").mkdir(exist_ok=True)
        os.symlink(path, work / "warc" / path.name)
    result = timed([sys.executable, __file__, "datatrove-chain", str(work)])
    result["kept"] = sum(
        1 for path in (work / "out").glob("*.jsonl.gz") for _ in gzip.open(path, "rt")
    )
    return result


def datatrove_chain(work: Path) -> None:
    """FineWeb's processing and MinHash dedup (datatrove's example), on one task each."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.writers import JsonlWriter
    from peers import datatrove_here

    from pipelines.lid_model import fetch_lid_model

    datatrove_here(str(fetch_lid_model()))  # the same local lid.176, no download
    language = LanguageFilter(languages=["en"], language_threshold=0.65)
    config = MinhashConfig()  # 5-grams, 14 buckets x 8 hashes
    stages = [
        [
            WarcReader(str(work / "warc"), glob_pattern="*.warc.gz"),
            Trafilatura(favour_precision=True),
            language,
            GopherRepetitionFilter(),
            GopherQualityFilter(),
            C4QualityFilter(filter_no_terminal_punct=False),
            JsonlWriter(str(work / "filtered")),
        ],
        [
            JsonlReader(str(work / "filtered")),
            MinhashDedupSignature(str(work / "sigs"), config=config),
        ],
        [MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)],
        [MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=config)],
        [
            JsonlReader(str(work / "filtered")),
            MinhashDedupFilter(str(work / "remove")),
            JsonlWriter(str(work / "out")),
        ],
    ]
    for index, pipeline in enumerate(stages):
        tasks = config.num_buckets if index == 2 else 1
        LocalPipelineExecutor(
            pipeline, tasks=tasks, workers=1, logging_dir=str(work / f"logs{index}")
        ).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make-input")
    make.add_argument("folder", type=Path)
    make.add_argument("--megabytes", type=float, default=320)
    run = commands.add_parser("run")
    run.add_argument("folder", type=Path)
    run.add_argument("--files", type=int, help="the first N WARC files only")
    run.add_argument("--only", choices=["llama-recipe", "datatrove"])
    run.add_argument("--core", default="0", help="the CPU core to pin each tool to")
    chain = commands.add_parser("datatrove-chain")
    chain.add_argument("work", type=Path)
    args = parser.parse_args()
    if args.command == "make-input":
        make_input(args.folder, args.megabytes)
        return
    if args.command == "datatrove-chain":
        datatrove_chain(args.work)
        return
    global CORE
    CORE = args.core
    files = warc_files(args.folder, args.files)
    megabytes = raw_megabytes(args.folder, args.files)
    tools = {"llama-recipe": run_ours, "datatrove": run_datatrove}
    warm_prefect_home()
    results = {}
    for name, run_tool in tools.items():
        if args.only and name != args.only:
            continue
        with tempfile.TemporaryDirectory(prefix=f"cc-{name}-") as work:
            results[name] = run_tool(files, Path(work))
        print(name, json.dumps(results[name]), flush=True)
    print(f"\n{len(files)} WARC files, {megabytes:.1f} MB raw; one core each (taskset -c {CORE})\n")
    print("| tool | CPU s | wall s | peak RSS MB | MB/s per core | kept docs |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['cpu_s']:.1f} | {r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} "
            f"| {megabytes / r['cpu_s']:.2f} | {r['kept']} |"
        )
    if len(results) == 2:
        ratio = results["datatrove"]["cpu_s"] / results["llama-recipe"]["cpu_s"]
        print(f"\nllama-recipe / datatrove, MB/s per core: {ratio:.1f}x")


if __name__ == "__main__":
    main()
