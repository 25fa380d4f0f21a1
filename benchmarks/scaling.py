"""Scaling curves of the whole sample-like build: 1x, 4x and 16x input, 1 and 2 Beam workers.

    .venv/bin/python benchmarks/scaling.py build/cc-bench [--scales 1 4 16] [--workers 1 2]
        [--plot build/scaling.png]

The recipe is recipes/sample.yaml (six sources, CCNet perplexity and the reference classifier
on CommonCrawl, C4's rules, line and near dedup, the tokenizer, the mix), except that its
CommonCrawl source reads real HTML pages as WARC: the pages `benchmarks/commoncrawl.py
make-input` wrote (first argument), in a fixed order by a hash of their URI, 16x being all of
them (315 MB raw) and 1x a sixteenth, filtered by CCNet's perplexity alone (the reference
classifier, trained with these very pages as its negatives, would keep none). CommonCrawl is
67% of the mixture and nearly all of the bytes; the other five sources are the sample's at
every scale.

Each build runs `llama-recipe build` into a fresh workdir, with the runner options
`direct_num_workers` N and `direct_running_mode: multi_processing` for N > 1 (the in-process
runner for N = 1). Wall and CPU seconds are those of the whole process tree; peak memory is
the largest resident set of any one process in it. CPU seconds by stage come from a second
build at each scale whose stages run one after another in one process (in a build, sources
run side by side).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import xxhash
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCALES = 16  # the input folder holds 16x
FILE_BYTES = 32_000_000


def write_scales(folder: Path, out: Path, scales: list[int]) -> dict[int, tuple[list[str], float]]:
    """{scale: (WARC files, raw MB)}: the response records ordered by a hash of their URI,
    each scale the first scale/16 of them."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    records = []
    for path in sorted(folder.glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh, arc2warc=True):
                if record.rec_type != "response":
                    continue
                uri = record.rec_headers.get_header("WARC-Target-URI")
                buffer = _serialized(record, WARCWriter)
                records.append((xxhash.xxh3_64_intdigest(uri.encode()), buffer))
    records.sort(key=lambda item: item[0])
    result = {}
    for scale in scales:
        folder_k = out / f"input-{scale}x"
        shutil.rmtree(folder_k, ignore_errors=True)
        folder_k.mkdir(parents=True)
        chosen = records[: len(records) * scale // SCALES]
        files, handle, size, raw = [], None, 0, 0
        for _, data in chosen:
            if handle is None or size >= FILE_BYTES:
                if handle is not None:
                    handle.close()
                files.append(str(folder_k / f"pages-{len(files):03d}.warc.gz"))
                handle, size = open(files[-1], "wb"), 0
            handle.write(gzip.compress(data, compresslevel=6))
            size += len(data)
            raw += len(data)
        if handle is not None:
            handle.close()
        result[scale] = (files, raw / 1e6)
    return result


def _serialized(record, writer_class) -> bytes:
    import io

    buffer = io.BytesIO()
    writer_class(buffer, gzip=False).write_record(record)
    return buffer.getvalue()


def recipe_for(files: list[str], workdir: Path, workers: int) -> dict:
    recipe = yaml.safe_load((ROOT / "recipes/sample.yaml").read_text())
    recipe["workdir"] = str(workdir)
    options = {}
    if workers > 1:
        options = {"direct_num_workers": workers, "direct_running_mode": "multi_processing"}
    recipe["runner"] = {"name": "FnApiRunner", "options": options}
    for source in recipe["sources"].values():
        source["inputs"] = [str((ROOT / "recipes" / p).resolve()) for p in source["inputs"]]
        for spec in source.get("filters", []):
            if isinstance(spec, dict):
                for key in ("model", "tokenizer"):
                    if key in spec:
                        spec[key] = str((ROOT / "recipes" / spec[key]).resolve())
    # The reference classifier, trained on these very pages as its negatives, would keep
    # none of them: CommonCrawl keeps CCNet's perplexity filter only.
    crawl = recipe["sources"]["commoncrawl"]
    crawl["filters"] = [f for f in crawl["filters"] if f.get("name") == "perplexity"]
    recipe["sources"]["commoncrawl"]["format"] = "warc"
    recipe["sources"]["commoncrawl"]["inputs"] = files
    return recipe


def build(recipe: dict, work: Path) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    from commoncrawl import PREFECT_HOME, timed

    env = {**os.environ, "PREFECT_HOME": str(PREFECT_HOME)}
    command = [str(ROOT / ".venv/bin/llama-recipe"), "build", str(path)]
    return timed(command, env, pin=False, stdout=subprocess.DEVNULL)


def stage_cpu(recipe: dict, work: Path) -> dict[str, float]:
    """CPU seconds of each stage over all sources, the stages run one after another in one
    process on the in-process runner (a build runs sources side by side, so its own per-stage
    times overlap)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    answer = subprocess.run(
        [sys.executable, __file__, "stage-cpu", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


def run_stages(recipe_path: str) -> None:
    from flows.recipe import load_recipe
    from pipelines.registry import STAGES
    from pipelines.stages import STAGE_CLASSES, StageContext, run_stage

    recipe = load_recipe(recipe_path)
    ctx = StageContext.from_recipe(recipe)
    seconds = {}
    for stage in STAGES:
        started = time.process_time()
        results = run_stage(STAGE_CLASSES[stage](), ctx, list(recipe.sources))
        if any(r.status != "not needed" for r in results):
            seconds[stage] = time.process_time() - started
    print(json.dumps(seconds))


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    sizes = sorted({r["raw_mb"] for r in results})
    for workers in sorted({r["workers"] for r in results}):
        rows = [r for r in results if r["workers"] == workers]
        label = f"{workers} worker" + ("s" if workers > 1 else "")
        left.plot([r["raw_mb"] for r in rows], [r["wall_s"] for r in rows], marker="o", label=label)
        measured = [r for r in rows if r.get("peak_rss_mb") is not None]
        right.plot(
            [r["raw_mb"] for r in measured],
            [r["peak_rss_mb"] for r in measured],
            marker="o",
            label=label,
        )
    left.set(xlabel="CommonCrawl input, MB of raw WARC", ylabel="build wall time, s")
    right.set(xlabel="CommonCrawl input, MB of raw WARC", ylabel="peak RSS of one process, MB")
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xticks(sizes, [f"{size:.0f}" for size in sizes])
        axis.minorticks_off()
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle("Sample-like build at 1x, 4x, 16x input (2-core machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    if sys.argv[1:2] == ["stage-cpu"]:
        run_stages(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="benchmarks/commoncrawl.py make-input's")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--work", type=Path, default=ROOT / "build/scaling")
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from commoncrawl import warm_prefect_home

    warm_prefect_home()
    inputs = write_scales(args.folder, args.work, args.scales)
    results = []
    for scale in args.scales:
        files, raw_mb = inputs[scale]
        for workers in args.workers:
            work = args.work / f"build-{scale}x-{workers}w"
            result = build(recipe_for(files, work / "store", workers), work)
            result.update(scale=scale, workers=workers, raw_mb=raw_mb)
            if workers == 1:
                work = args.work / f"stages-{scale}x"
                result["stages"] = stage_cpu(recipe_for(files, work / "store", 1), work)
            results.append(result)
            print(json.dumps(result), flush=True)
    print("\n| input | CommonCrawl MB | workers | wall s | CPU s | peak RSS MB | wall vs 1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        one = next(x for x in results if x["scale"] == r["scale"] and x["workers"] == 1)
        print(
            f"| {r['scale']}x | {r['raw_mb']:.0f} | {r['workers']} | {r['wall_s']:.1f} "
            f"| {r['cpu_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['wall_s'] / one['wall_s']:.2f} |"
        )
    stages = list(results[0]["stages"])
    print("\nCPU seconds per GB of raw CommonCrawl input, by stage (one process, in order):\n")
    print("| input | " + " | ".join(stages) + " |")
    print("|---|" + "---:|" * len(stages))
    for r in results:
        if r["workers"] == 1:
            per_gb = [r["stages"].get(s, 0.0) / (r["raw_mb"] / 1000) for s in stages]
            print(f"| {r['scale']}x | " + " | ".join(f"{v:.0f}" for v in per_gb) + " |")
    if args.plot:
        plot(results, args.plot)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
