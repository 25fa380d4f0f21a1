"""The decontaminate stage on real documents with evaluation examples planted in them: recall
of the contaminated documents, the share of clean documents removed, and its throughput and
peak memory against the dedup stage on the same input, in the same run.

    .venv/bin/python benchmarks/decontamination.py [--pages 2750] [--scales 1 4] [--repeat 3]

Corpus: the real HTML pages of the Debian documentation packages under --html-root (the
order and the pages of benchmarks/stage_memory.py: the Debian handbook in its languages, the
PostgreSQL, Python, Django, libstdc++, Git, Sphinx and GnuCash manuals), written as WARC
records and turned into text by the project's `warc` reader (resiliparse main text), as the
extract stage gives them. Scale k takes the first k * --pages pages.

Evaluation sets: benchmarks/eval_examples.py, 353 examples in six tasks (ARC/MMLU-like
multiple choice, TriviaQA-like questions, GSM8K-like word problems, LAMBADA-like completions
in four languages). One document in ten (by a hash of its URL) gets one example pasted
between two of its paragraphs, in a form drawn from: the whole example as a prompt with
lettered options and an answer key, the whole example as plain text, a run of 13 to 30
consecutive words of it, and either of those reformatted (upper, lower or title case, words
broken over lines or spread with tabs and spaces, HTML-escaped quotes, apostrophes and
spaces, tags, curly quotes, accents stripped or decomposed). Recall counts a planted document
as found when the stage rejects it; every other document is clean, and a clean document
removed is a false positive (listed).

Timing: the same Parquet files are the quality stage's output in one workdir (dedup reads
them) and dedup's output in another (decontaminate reads them); each stage runs forced, alone
in a fresh process pinned to one core (`taskset`), through stage_memory.py's --run, which
reports its wall seconds and peak RSS (its own VmHWM: this script holds the corpus, and
ru_maxrss would start at that); the runs of the two stages alternate and the medians
are reported, with the ratio of their throughputs. dedup is the stage as a build runs it on
a `warc` source: CCNet line dedup, exact, MinHash near dedup at 0.8.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from eval_examples import tasks  # noqa: E402
from stage_memory import HTML_ROOT, child, pages, write_warcs  # noqa: E402

SOURCE = "docs"
PLANT_RATE = 0.1
FORMS = ("prompt", "plain", "partial", "prompt+reformat", "plain+reformat", "partial+reformat")


def extract(paths: list[str], cache: Path) -> list[dict]:
    """(url, text) of every page that has text, in the pages' order, cached as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.sources import base

    table = cache / f"pages-{len(paths)}.parquet"
    if table.exists():
        return pq.read_table(table).to_pylist()
    warcs = write_warcs(paths, cache / f"warc-{len(paths)}")
    docs = []
    for path in warcs:
        for record in base.read_file(path, SOURCE, base.READERS["warc"]):
            if isinstance(record, dict) and record.get("text"):
                docs.append({"url": record["url"], "text": record["text"]})
    shutil.rmtree(cache / f"warc-{len(paths)}")
    pq.write_table(pa.Table.from_pylist(docs), table)
    return docs


# -- planting --------------------------------------------------------------------------------


def raw_text(example: dict, rng: random.Random) -> str:
    """The example as one text: the question with its answer (a gold choice, or an answer)."""
    if "choices" in example:
        context = example["context"].replace("Question:", "").replace("Answer:", "").strip()
        return f"{context} {example['choices'][example['gold']].strip()}"
    return f"{example['question']} {rng.choice(example['answers'])}"


def as_prompt(example: dict, rng: random.Random) -> str:
    if "choices" in example:
        context = example["context"].replace("\nAnswer:", "").strip()
        letters = "ABCDEFGH"
        style = rng.choice(["{}. {}", "({}) {}", "{}) {}"])
        options = "\n".join(
            style.format(letters[i], c.strip()) for i, c in enumerate(example["choices"])
        )
        return f"{context}\n{options}\nAnswer: {letters[example['gold']]}"
    label = rng.choice([("Question:", "Answer:"), ("Q:", "A:")])
    answer = rng.choice(example["answers"])
    return f"{label[0]} {example['question']}\n{label[1]} {answer}"


def partial(example: dict, rng: random.Random) -> str | None:
    """A run of consecutive words of the example's text that holds 13 to 30 words once
    normalized (None if the example is shorter)."""
    from dedup.contamination import normalize

    words = raw_text(example, rng).split()
    want = rng.randint(13, 30)
    for start in rng.sample(range(len(words)), len(words)):
        for end in range(start + 1, len(words) + 1):
            snippet = " ".join(words[start:end])
            if len(normalize(snippet).split()) >= want:
                return snippet
        want = 13  # from this start the text is too short for more
    return None


def reformat(text: str, rng: random.Random) -> str:
    """The same words as they might be pasted or rendered elsewhere."""
    text = rng.choice([str.upper, str.lower, str.title, str])(text)
    if rng.random() < 0.5:
        text = text.replace('"', rng.choice(["&quot;", "“"])).replace(
            "'", rng.choice(["&#39;", "’"])
        )
    if rng.random() < 0.5:
        accents = rng.choice(["NFD", "strip"])
        decomposed = unicodedata.normalize("NFD", text)
        text = decomposed if accents == "NFD" else re.sub(r"[\u0300-\u036f]", "", decomposed)
    gaps = ["\n", "  ", " \t ", "&nbsp;", "<br>", " "]
    words = text.split(" ")
    text = words[0] + "".join(rng.choice(gaps) + w for w in words[1:])
    if rng.random() < 0.3:
        text = f"<p>{text}</p>"
    return text


def plant(docs: list[dict], examples: list[tuple[str, dict]], seed: int) -> dict[str, tuple]:
    """Paste an example into one document in ten; {document id: (task, example id, form)}."""
    from pipelines.document import unit_hash

    planted = {}
    for doc in docs:
        if unit_hash(seed, "plant", doc["url"]) >= PLANT_RATE:
            continue
        rng = random.Random(f"{seed}:{doc['url']}")
        task, example = rng.choice(examples)
        form = rng.choice(FORMS)
        base = form.split("+")[0]
        snippet = partial(example, rng) if base == "partial" else None
        if snippet is None:
            snippet = as_prompt(example, rng) if base == "prompt" else raw_text(example, rng)
            form = form.replace("partial", "plain")
        if form.endswith("+reformat"):
            snippet = reformat(snippet, rng)
        paragraphs = doc["text"].split("\n")
        at = rng.randint(0, len(paragraphs))
        doc["text"] = "\n".join([*paragraphs[:at], snippet, *paragraphs[at:]])
        planted[doc["id"]] = (task, example["id"], form)
    return planted


# -- the stages ------------------------------------------------------------------------------


def write_as(workdir: Path, stage: str, docs: list[dict]) -> None:
    """The documents as a committed output of `stage` (Parquet files of 500 documents)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.document import document_schema
    from pipelines.store import StageStore

    store = StageStore(str(workdir / "work"))
    folder = Path(store.dir(stage, SOURCE))
    folder.mkdir(parents=True, exist_ok=True)
    schema = document_schema(stage)
    for n, start in enumerate(range(0, len(docs), 500)):
        rows = [{"source": SOURCE, **d} for d in docs[start : start + 500]]
        table = pa.Table.from_pylist(rows, schema=schema)
        pq.write_table(table, folder / f"part-{n:05d}.parquet", row_group_size=250)
    counts = {"input": len(docs), "kept": len(docs), "rejected": 0}
    chars = sum(len(d["text"]) for d in docs)
    store.write_manifest(
        stage, SOURCE, {"run_id": workdir.name, "counts": counts, "kept_text_chars": chars}
    )


def write_recipe(workdir: Path, task_files: list[str]) -> Path:
    import yaml

    recipe = {
        "name": "decontamination-bench",
        "workdir": str(workdir / "work"),
        "sources": {SOURCE: {"format": "warc", "inputs": ["unused"], "weight": 1}},
        "mixture": {"total_tokens": 1000},
        "decontamination": {"eval_sets": task_files},
    }
    path = workdir / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def verdicts(workdir: Path) -> dict[str, tuple[str, str]]:
    """{rejected id: (reason, detail)} of the decontaminate run."""
    import pyarrow.parquet as pq

    from pipelines.store import StageStore, match_files

    store = StageStore(str(workdir / "work"))
    out = {}
    for path in match_files(store.rejects("decontaminate", SOURCE)):
        for row in pq.read_table(path, columns=["id", "reason", "detail"]).to_pylist():
            out[row["id"]] = (row["reason"], row["detail"])
    return out


def kernel_rate(docs: list[dict], task_files: list[str]) -> tuple[float, float]:
    """MB/s of EvalIndex.check alone, in this process, over 4 MB batches; and index build s."""
    from dedup.contamination import EvalIndex, read_task

    started = time.perf_counter()
    examples = []
    for item in task_files:
        name, _, path = item.partition("=")
        examples += read_task(name, path, Path(path).read_bytes())
    index = EvalIndex.build(examples, 13, 8)
    build_seconds = time.perf_counter() - started
    texts = [d["text"] for d in docs]
    started = time.perf_counter()
    batch, size = [], 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size > 4_000_000:
            index.check(batch)
            batch, size = [], 0
    index.check(batch)
    seconds = time.perf_counter() - started
    return sum(len(t.encode()) for t in texts) / 1e6 / seconds, build_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2750, help="HTML pages at 1x")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--html-root", default=HTML_ROOT)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/decontamination-bench"))
    parser.add_argument("--core", default="0", help="the core each timed stage is pinned to")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    pool = pages(args.html_root)[: args.pages * max(args.scales)]
    args.workdir.mkdir(parents=True, exist_ok=True)
    every = extract(pool, args.workdir)
    page_of = {f"https://docs.example.org{p}": i for i, p in enumerate(pool)}
    task_files = []
    for name, records in tasks(args.seed).items():
        path = args.workdir / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        task_files.append(f"{name}={path}")
    examples = [(name, r) for name, records in tasks(args.seed).items() for r in records]
    print(f"{len(examples)} evaluation examples in {len(task_files)} tasks", flush=True)

    rows = []
    for scale in args.scales:
        docs = [
            {"id": f"{SOURCE}/{i}", "url": d["url"], "text": d["text"]}
            for i, d in enumerate(every)
            if page_of[d["url"]] < args.pages * scale
        ]
        planted = plant(docs, examples, args.seed)
        megabytes = sum(len(d["text"].encode()) for d in docs) / 1e6
        runs = {}
        for stage, upstream in (("dedup", "quality"), ("decontaminate", "dedup")):
            workdir = args.workdir / f"{scale}x-{stage}"
            shutil.rmtree(workdir, ignore_errors=True)
            write_as(workdir, upstream, docs)
            runs[stage] = (write_recipe(workdir, task_files), [])
        for _ in range(args.repeat):
            for stage, (recipe, results) in runs.items():
                results.append(child(recipe, stage, force=True, core=args.core))
        found = verdicts(args.workdir / f"{scale}x-decontaminate")
        hits = [d for d in planted if d in found]
        right_task = [d for d in hits if found[d][0] == f"decontaminate:{planted[d][0]}"]
        clean = len(docs) - len(planted)
        false = {d: v for d, v in found.items() if d not in planted}
        missed = [(d, planted[d]) for d in planted if d not in found]
        by_form = {f: [d for d in planted if planted[d][2] == f] for f in FORMS}
        kernel, build_seconds = kernel_rate(docs, task_files)
        row = {
            "scale": scale,
            "docs": len(docs),
            "megabytes": megabytes,
            "planted": len(planted),
            "recall": len(hits) / len(planted),
            "right_task": len(right_task) / max(len(hits), 1),
            "clean": clean,
            "clean_removed": len(false),
            "recall_by_form": {
                f: f"{sum(d in found for d in ds)}/{len(ds)}" for f, ds in by_form.items()
            },
            "kernel_mb_s": kernel,
            "index_build_s": build_seconds,
        }
        for stage, (_, results) in runs.items():
            seconds = statistics.median(r["seconds"] for r in results)
            row[stage] = {
                "seconds": seconds,
                "cpu_seconds": statistics.median(r["cpu_seconds"] for r in results),
                "peak_mb": max(r["own_peak_mb"] or r["peak_mb"] for r in results),
                "mb_s": megabytes / seconds,
                "docs_s": len(docs) / seconds,
                "all_seconds": [round(r["seconds"], 2) for r in results],
            }
        row["speed_ratio"] = row["decontaminate"]["mb_s"] / row["dedup"]["mb_s"]
        rows.append(row)
        print(json.dumps(row, indent=1), flush=True)
        for doc, (reason, detail) in list(false.items())[:10]:
            print(f"  clean removed: {doc} {reason} {detail}")
        for doc, what in missed[:10]:
            print(f"  missed: {doc} {what}")

    print(
        "\n| scale | docs | MB of text | planted | recall | clean removed | "
        "dedup s | decontaminate s | dedup MB/s | decontaminate MB/s | docs/s | ratio | "
        "peak MB dedup | peak MB decontaminate |"
    )
    print("|---:" * 14 + "|")
    for r in rows:
        dedup, decon = r["dedup"], r["decontaminate"]
        print(
            f"| {r['scale']}x | {r['docs']:,} | {r['megabytes']:.1f} | {r['planted']} | "
            f"{r['recall']:.4f} | {r['clean_removed']} of {r['clean']:,} "
            f"({100 * r['clean_removed'] / r['clean']:.3f}%) | {dedup['seconds']:.1f} | "
            f"{decon['seconds']:.1f} | {dedup['mb_s']:.2f} | {decon['mb_s']:.2f} | "
            f"{dedup['docs_s']:.0f} / {decon['docs_s']:.0f} | {r['speed_ratio']:.1f}x | "
            f"{dedup['peak_mb']:.0f} | {decon['peak_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
