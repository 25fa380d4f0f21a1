"""Near-duplicate removal measured against brute force: a corpus of real text with near-copies
made by the edits real duplicates show, exact Jaccard of every pair on the same shingles, and
the greedy keep rule on that exact graph as the ground truth."""

import gzip
import json
import random
import re
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from dedup.cluster import greedy, keep_priority
from dedup.minhash import exact_jaccard, shingle_hashes
from pipelines.recipe import load_recipe
from pipelines.stages import STAGE_CLASSES, StageContext, run_stage
from pipelines.store import match_files
from samples import registers, texts
from tests.conftest import SHARED_FIXTURES

pytestmark = pytest.mark.integration
THRESHOLD = 0.8
BOILERPLATE = [
    "Share this article on Facebook and Twitter.",
    "© 2019 All rights reserved. Terms of use and privacy policy apply.",
    "Subscribe to our newsletter for the latest updates.",
    "Posted by admin in Uncategorized. Leave a comment.",
]


def real_documents() -> list[str]:
    """Real text: C4 pages and Wikipedia-sample articles (../shared when present), plus the
    project's own sample prose."""
    docs = ["\n\n".join(ps) for ps in texts.ENGLISH.values()]
    docs += [" ".join(p) for p in zip(*texts.ENGLISH.values(), strict=False)]
    r = random.Random("dedup-corpus")
    docs += [registers.encyclopedia_article(r)[1] for _ in range(40)]
    c4 = SHARED_FIXTURES / "c4" / "olmo-c4-sample.00000-of-00001.json.gz"
    if c4.exists():
        with gzip.open(c4, "rt") as fh:
            pages = [json.loads(line)["text"] for line in fh]
        docs += [p for p in pages if 150 <= len(p.split()) <= 1500][:220]
    return docs


def edit(text: str, r: random.Random, pool: list[str]) -> str:
    """A near-copy: the edits that real duplicates show, one to three of them."""
    paragraphs = [p for p in re.split(r"\n+", text) if p.strip()]
    for _ in range(r.randint(1, 3)):
        kind = r.choice(["boilerplate", "insert", "remove", "reflow", "template", "words"])
        if kind == "boilerplate":
            paragraphs.insert(r.choice([0, len(paragraphs)]), r.choice(BOILERPLATE))
        elif kind == "insert":
            other = r.choice(pool).split("\n")
            paragraphs.insert(r.randrange(len(paragraphs) + 1), r.choice(other))
        elif kind == "remove" and len(paragraphs) > 1:
            paragraphs.pop(r.randrange(len(paragraphs)))
        elif kind == "reflow":
            paragraphs = textwrap.wrap(" ".join(paragraphs), r.randint(40, 90))
        elif kind == "template":
            year = str(r.randint(1990, 2024))
            paragraphs = [re.sub(r"\b(19|20)\d\d\b", year, p) for p in paragraphs]
            paragraphs = [
                re.sub(r"\b\d+\b", lambda m: str(r.randint(1, 99)), p) for p in paragraphs
            ]
        else:  # a few words changed here and there
            words = " ".join(paragraphs).split(" ")
            for _ in range(max(1, len(words) // r.randint(15, 60))):
                words[r.randrange(len(words))] = r.choice(["the", "a", "new", "local", "best"])
            paragraphs = [" ".join(words)]
    return "\n".join(paragraphs)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    r = random.Random(7)
    base = real_documents()
    rows = []
    for i, text in enumerate(base):
        rows.append({"id": f"doc{i}", "text": text, "url": f"https://site{i}.example/"})
        for k in range(r.choice([0, 0, 1, 1, 2, 3])):
            rows.append(
                {
                    "id": f"doc{i}-copy{k}",
                    "text": edit(text, r, base),
                    "url": f"https://m{k}.example/{i}",
                }
            )
    directory = tmp_path_factory.mktemp("near")
    (directory / "docs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return directory, rows


def build(directory, workdir, options=None):
    recipe = {
        "name": "near",
        "workdir": str(workdir),
        "runner": {"name": "FnApiRunner", "options": options or {}},
        "sources": {
            "web": {"format": "jsonl", "inputs": [str(directory / "docs.jsonl")], "weight": 1}
        },
        "mixture": {"total_tokens": 1000},
    }
    path = workdir.parent / f"{workdir.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    ctx = StageContext.from_recipe(load_recipe(path))
    for stage in ("extract", "langid", "quality", "dedup"):
        run_stage(STAGE_CLASSES[stage](), ctx, ["web"])
    kept = [
        d
        for f in match_files(ctx.store.parts("dedup", "web"))
        for d in pq.read_table(f).to_pylist()
    ]
    rejects = [
        d
        for f in match_files(ctx.store.rejects("dedup", "web"))
        for d in pq.read_table(f).to_pylist()
    ]
    return ctx, kept, rejects


def test_precision_and_recall_against_brute_force(corpus, tmp_path, shared_fixtures):
    # The size and the near-threshold counts asserted below need the real C4 pages of
    # ../shared; without them the test skips (the runner test below still runs).
    directory, rows = corpus
    ctx, kept, rejects = build(directory, tmp_path / "a")
    docs = kept + rejects
    assert len(docs) == len(rows)
    by_id = {d["id"]: d for d in docs}
    shingles = {d["id"]: shingle_hashes(d["text"]) for d in docs}
    ids = sorted(shingles)
    edges = []
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            similarity = exact_jaccard(shingles[a], shingles[b])
            if similarity >= THRESHOLD:
                edges.append((a, b, similarity))
    rules = ctx.recipe.dedup.keep
    truth = greedy({i: keep_priority(by_id[i], rules, {}) for i in ids}, edges)
    should_go = {i for i, decision in truth.items() if decision is not None}
    removed = {d["id"] for d in rejects}
    kept_ids = {d["id"] for d in kept}
    neighbours = {i: set() for i in ids}
    for a, b, _ in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    correct = {i for i in removed if neighbours[i] & kept_ids}
    precision = len(correct) / len(removed)
    recall = len(removed & should_go) / len(should_go)
    near = sum(1 for d in rejects if d["reason"] == "dedup:near")
    print(
        f"{len(rows)} documents, {len(edges)} pairs at J >= {THRESHOLD}, "
        f"{len(should_go)} to remove; "
        f"removed {len(removed)} ({near} near, {len(removed) - near} exact): "
        f"precision {precision:.4f}, recall {recall:.4f}"
    )
    assert len(should_go) >= 100  # the corpus has real work in it...
    # ...near the threshold too: copies on both sides of it, within 0.1.
    original = {d["url"]: d["id"] for d in docs if d["url"].startswith("https://site")}
    copies = [
        exact_jaccard(
            shingles[d["id"]],
            shingles[original[f"https://site{d['url'].rsplit('/', 1)[1]}.example/"]],
        )
        for d in docs
        if not d["url"].startswith("https://site")
    ]
    assert sum(THRESHOLD - 0.1 <= j < THRESHOLD for j in copies) >= 20
    assert sum(THRESHOLD <= j < THRESHOLD + 0.1 for j in copies) >= 20
    assert precision >= 0.995 and recall >= 0.99
    for d in rejects:
        assert d["duplicate_of"] in by_id and d["value"] >= THRESHOLD
        if d["reason"] == "dedup:near":
            assert d["value"] == pytest.approx(
                exact_jaccard(shingles[d["id"]], shingles[d["duplicate_of"]])
            )


def test_same_kept_ids_across_runners_and_runs(corpus, tmp_path):
    directory, _ = corpus
    _, first, _ = build(directory, tmp_path / "one")
    _, again, _ = build(directory, tmp_path / "two")
    options = {"direct_num_workers": 2, "direct_running_mode": "multi_processing"}
    _, parallel, rejects = build(directory, tmp_path / "three", options)
    ids = sorted(d["id"] for d in first)
    assert ids == sorted(d["id"] for d in again) == sorted(d["id"] for d in parallel)
    assert np.all([d["duplicate_of"] for d in rejects])


def test_cross_source_dedup_keeps_the_priority_source(tmp_path):
    r = random.Random(3)
    articles = [registers.encyclopedia_article(r)[1] for _ in range(12)]
    wiki = [{"id": f"w{i}", "text": t} for i, t in enumerate(articles)]
    # The crawl holds mirrors of half the articles, with boilerplate around them.
    crawl = [
        {"id": f"c{i}", "text": BOILERPLATE[0] + "\n" + t + "\n" + BOILERPLATE[2]}
        for i, t in enumerate(articles[:6])
    ] + [{"id": "c-other", "text": "\n\n".join(texts.ENGLISH["bread"])}]
    for name, rows in (("wiki", wiki), ("crawl", crawl)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    recipe = {
        "name": "cross",
        "workdir": str(tmp_path / "work"),
        "sources": {
            name: {"format": "jsonl", "inputs": [str(tmp_path / f"{name}.jsonl")], "weight": 1}
            for name in ("crawl", "wiki")
        },
        # Lower the bar so that the boilerplate does not hide the copies.
        "dedup": {
            "cross_source": [["crawl", "wiki"]],
            "source_priority": ["wiki"],
            "threshold": 0.7,
        },
        "mixture": {"total_tokens": 1000},
    }
    path = tmp_path / "cross.yaml"
    path.write_text(yaml.safe_dump(recipe))
    ctx = StageContext.from_recipe(load_recipe(path))
    for stage in ("extract", "langid", "quality"):
        run_stage(STAGE_CLASSES[stage](), ctx, ["crawl", "wiki"])
    # Asking for one source reruns its whole group.
    results = run_stage(STAGE_CLASSES["dedup"](), ctx, ["crawl"])
    assert sorted(x.source for x in results) == ["crawl", "wiki"]
    crawl_rejects = [
        d
        for f in match_files(ctx.store.rejects("dedup", "crawl"))
        for d in pq.read_table(f).to_pylist()
    ]
    assert len(crawl_rejects) == 6  # every mirror, not the unrelated page
    wiki_kept = {
        d["id"]
        for f in match_files(ctx.store.parts("dedup", "wiki"))
        for d in pq.read_table(f).to_pylist()
    }
    assert len(wiki_kept) == 12  # the priority source keeps every article
    assert all(
        d["duplicate_of"] in wiki_kept and d["reason"] == "dedup:near" for d in crawl_rejects
    )
    manifest = ctx.store.read_manifest("dedup", "crawl")
    assert manifest["group"] == ["crawl", "wiki"] and manifest["removed_by_kind"]["near"] == 6
