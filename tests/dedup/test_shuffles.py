"""The dedup stage shuffles compact records, never documents: every GroupByKey and side input
of the pipeline it builds is watched, and no element that reaches one holds a row or a piece
of a document's text; the stage's output and its count of keep/remove rounds are checked in
the same run."""

import dataclasses

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from apache_beam.pipeline import PipelineVisitor

from pipelines.document import document_schema
from pipelines.recipe import load_recipe
from pipelines.stages import STAGE_CLASSES, StageContext, run_stage
from pipelines.store import match_files
from samples import texts

pytestmark = pytest.mark.integration
NAVIGATION = "Home | News | Sport | Weather | Contact us"
FOOTER = "Share this page on social media. All rights reserved."


def corpus() -> dict[str, list[dict]]:
    """A crawl (line dedup on) with an article of its own, a wiki article with a word
    changed, another word for word, and a stub; every crawl page carries the same
    navigation and footer lines."""
    articles = {name: "\n\n".join(paragraphs) for name, paragraphs in texts.ENGLISH.items()}
    wiki = [{"id": f"wiki/{name}", "text": t} for name, t in articles.items() if name != "health"]
    near = articles["rivers"].replace(" water", " waters", 1)
    assert near != articles["rivers"]
    pages = [articles["health"], near, articles["music"], "Only a stub."]
    crawl = [
        {"id": f"crawl/{i}", "text": f"{NAVIGATION}\n{text}\n{FOOTER}"}
        for i, text in enumerate(pages)
    ]
    return {"crawl": crawl, "wiki": wiki}


def compact(element, texts: list[str]) -> bool:
    """No row and no string that is a piece of a document's text, at any depth."""
    if isinstance(element, dict):  # a row, or a node's neighbours
        items = [x for pair in element.items() for x in pair]
        return "text" not in element and compact(items, texts)
    if isinstance(element, str):
        return len(element) < 40 or not any(element in t for t in texts)
    if dataclasses.is_dataclass(element):
        return all(compact(v, texts) for v in vars(element).values())
    if isinstance(element, tuple | list | set | frozenset):
        return all(compact(x, texts) for x in element)
    return True  # numbers, bytes, numpy arrays, Beam's own window and pane values


class Shuffles(PipelineVisitor):
    """The inputs of every GroupByKey and the side inputs of every transform."""

    def __init__(self):
        self.found = []

    def visit_transform(self, node):
        if isinstance(node.transform, beam.GroupByKey):
            self.found.append((node.full_label, node.inputs[0]))
        self.found += [(node.full_label, s.pvalue) for s in node.side_inputs]


def test_dedup_shuffles_carry_no_text_and_its_rounds_stop_early(tmp_path):
    docs = corpus()
    all_texts = [d["text"] for rows in docs.values() for d in rows]
    recipe = {
        "name": "shuffles",
        "workdir": str(tmp_path / "work"),
        "sources": {
            "crawl": {"format": "wet", "inputs": ["x"], "weight": 1},
            "wiki": {"format": "jsonl", "inputs": ["x"], "weight": 1},
        },
        "dedup": {"cross_source": [["crawl", "wiki"]], "source_priority": ["wiki"], "rounds": 6},
        "mixture": {"total_tokens": 1000},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    ctx = StageContext.from_recipe(load_recipe(path))
    for source, rows in docs.items():
        rows = [{**d, "source": source} for d in rows]
        directory = tmp_path / "work" / "quality" / source
        directory.mkdir(parents=True)
        table = pa.Table.from_pylist(rows, schema=document_schema("quality"))
        pq.write_table(table, directory / "part-0.parquet")
        counts = {"input": len(rows), "kept": len(rows)}
        chars = sum(len(d["text"]) for d in rows)
        ctx.store.write_manifest(
            "quality", source, {"run_id": source, "counts": counts, "kept_text_chars": chars}
        )
    watched = []

    class WatchedDedup(STAGE_CLASSES["dedup"]):
        def build(self, pipeline, ctx, sources, prepared):
            super().build(pipeline, ctx, sources, prepared)
            shuffles = Shuffles()
            pipeline.visit(shuffles)
            for i, (label, pcoll) in enumerate(shuffles.found):
                if "/Write/" in label:
                    continue  # the writer's own bookkeeping: file names
                watched.append(label)
                pcoll | f"Watch{i}" >> beam.Map(_check, all_texts, label)

    results = {r.source: r.manifest for r in run_stage(WatchedDedup(), ctx, ["crawl", "wiki"])}
    assert len(watched) >= 10  # lines, exact, buckets, joins, rounds, per-file joins
    crawl = results["crawl"]
    assert crawl["removed_by_kind"] == {"lines": 1, "exact": 1, "near": 1}
    assert results["wiki"]["counts"]["rejected"] == 0
    kept = pq.read_table(match_files(ctx.store.parts("dedup", "crawl"))[0]).to_pylist()
    assert [d["id"] for d in kept] == ["crawl/0"]
    assert NAVIGATION not in kept[0]["text"] and FOOTER not in kept[0]["text"]
    # One near pair (wiki first): kept in round 0, the copy removed in round 1; 6 allowed.
    assert crawl["keep_remove_rounds"] == 2 and results["wiki"]["keep_remove_rounds"] == 1


def _check(element, texts: list[str], label: str):
    assert compact(element, texts), f"{label} shuffles text: {str(element)[:200]}"
    return element
