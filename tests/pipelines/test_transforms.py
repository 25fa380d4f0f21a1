"""The named transforms of pipelines/transforms and the store's ReadStage/WriteStage, each run
on a few in-memory documents by Beam's in-process FnApiRunner: which documents are kept,
which are rejected with which reason and survivor, exact token counts, shard contents.

Every pipeline costs about a second, so each test builds one pipeline and checks all of its
outputs there."""

from __future__ import annotations

import json
import os
import unicodedata

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from dedup.cluster import KEPT as NODE_KEPT
from dedup.cluster import REMOVED, UNDECIDED, Node, greedy
from dedup.minhash import exact_jaccard, shingle_hashes
from filters.c4 import C4Config
from filters.gopher import GopherQualityConfig, word_count
from pipelines.document import (
    document_schema,
    make_document,
    reject_schema,
    token_schema,
    unit_hash,
    with_rejection,
)
from pipelines.mixture import SourcePlan
from pipelines.shards import BOS_ID, EOS_ID, ShardReader, shard_name
from pipelines.store import (
    KEPT,
    REJECTED,
    ReadStage,
    StageStore,
    WriteStage,
    doc_key,
    file_of,
    parquet_rows,
    reject_reasons,
    row_of,
)
from pipelines.transforms.dedup import (
    ApplyVerdicts,
    DedupFiles,
    DedupGroup,
    DedupSource,
    ExactDedup,
    KeepOrder,
    LineDedup,
    LineDedupConfig,
    Survey,
    SurveyConfig,
    Verdicts,
)
from pipelines.transforms.mixing import (
    Instance,
    Packing,
    PackRows,
    ShardLayout,
    ShardSet,
    SourceInstances,
    SourceSampling,
    WriteShards,
)
from pipelines.transforms.near_dedup import (
    ROUND_COUNTER,
    ClusterSizes,
    KeepOrRemove,
    NearDedupConfig,
    NearDuplicates,
    decision,
    rounds_used,
)
from pipelines.transforms.quality import QualityFiltering, QualityFilters
from pipelines.transforms.validation import HoldOut, HoldOutConfig, PackHeldOut

pytestmark = pytest.mark.integration
SEED = 7


def pipeline() -> BeamTestPipeline:
    """Beam's TestPipeline on the in-process runner (the Prism runner would download a
    binary). Imported under another name, or pytest would try to collect it as a test class."""
    return BeamTestPipeline(runner="FnApiRunner")


def counter(result, namespace: str, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_namespace(namespace).with_name(name))
    return sum(c.committed for c in found["counters"])


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def doc(doc_id: str, text: str | None, quality_score: float | None = None) -> dict:
    return {
        "id": doc_id,
        "source": doc_id.split("/")[0],
        "text": text,
        "quality_score": quality_score,
    }


def rejection(row: dict) -> tuple:
    return row["id"], row["reason"], row["duplicate_of"], row["value"], row["threshold"]


# -- dedup: documents in store files, read again by the transforms ------------------------------
def store_files(
    tmp_path,
    sources: dict[str, list[list[dict]]],
    groups: list[list[str]] | None = None,
    lines: frozenset[str] = frozenset(),
    namespace: str = "dedup",
) -> DedupFiles:
    """Each source's files (lists of documents) written as the quality stage writes them,
    numbered as the dedup stage numbers them: one group per source unless `groups`."""
    groups = groups or [[s] for s in sources]
    tmp_path.mkdir(parents=True, exist_ok=True)
    group_of = {s: i for i, group in enumerate(groups) for s in group}
    paths, file_sources = [], []
    for index, (name, files) in enumerate(sources.items()):
        for k, docs in enumerate(files):
            path = tmp_path / f"{name}-{k}.parquet"
            if not path.exists():
                table = pa.Table.from_pylist(docs, schema=document_schema("quality"))
                pq.write_table(table, path)
            paths.append(str(path))
            file_sources.append(index)
    return DedupFiles(
        tuple(paths),
        tuple(file_sources),
        tuple(
            DedupSource(name, group_of[name], name in lines, f"{namespace}/{name}")
            for name in sources
        ),
        tuple(DedupGroup(tuple(g), 0.8, f"{namespace}/{'+'.join(g)}") for g in groups),
    )


def keys_by_id(files: DedupFiles) -> dict[str, int]:
    """Each document's doc key, from the files as written."""
    return {
        row["id"]: doc_key(file_no, r)
        for file_no, path in enumerate(files.paths)
        for r, row in enumerate(pq.read_table(path, columns=["id"]).to_pylist())
    }


def applied(p, files: DedupFiles, lines: LineDedupConfig, cuts, verdicts, label: str):
    """ApplyVerdicts' kept and rejected rows of every source, each side flattened."""
    out = {
        "file": p | f"{label}Files" >> beam.Create(files.numbered()),
        "cuts": cuts,
        "verdicts": verdicts,
    } | f"{label}Apply" >> ApplyVerdicts(files, lines)
    n = len(files.sources)
    return {
        side: [out[f"{side}{i}"] for i in range(n)] | f"{label}All{side}" >> beam.Flatten()
        for side in (KEPT, REJECTED)
    }


def is_compact_note(item) -> bool:
    """A line note: (file number, (rows, line hashes)) as arrays of numbers, no text."""
    file_no, (rows, hashes) = item
    return isinstance(file_no, int) and rows.dtype == np.uint32 and hashes.dtype == np.uint64


ORDER = KeepOrder(("source_priority", "quality_score", "length"), {})


# -- line dedup ---------------------------------------------------------------------------------
NAV = "Home | World | Business | Sport | Weather"
HARBOUR = (
    "The harbour authority confirmed on Tuesday that dredging of the eastern channel will "
    "begin in April and last for about six weeks. Fishing boats will be moved to the "
    "western quay while the work goes on, and the ferry timetable will not change. The "
    "harbour master said the channel had become too shallow for the larger trawlers at "
    "low tide."
)
COUNCIL = "The council meeting on the new cycle lanes has been moved to Thursday evening."
RECIPE = (
    "Serves four.\n"
    "Fry the onions slowly in butter until they are soft and golden, then add the garlic, "
    "the thyme and a pinch of salt.\n"
    "Pour in the stock, bring it to the boil and let the soup simmer for twenty minutes "
    "before you blend it until smooth.\n"
    "Serves four."
)


def test_line_dedup_removes_lines_shared_by_documents_of_a_group(tmp_path):
    """Navigation, share and copyright lines repeated across two articles (in two files) go
    from both (the comparison ignores case, digits and punctuation); the article left with a
    one-line body is rejected as too short, as it came in; a line repeated inside one
    document stays; with two groups the articles fall apart and nothing is removed. What
    the shuffle brings back to each file is row numbers and line hashes, never text."""
    news_1 = doc(
        "web/news-1",
        f"{NAV}\n\n{HARBOUR}\n\nShare this article on Facebook and Twitter.\n"
        "© 2019 Riverside Media. All rights reserved.",
    )
    news_3 = doc(
        "web/news-3",
        f"HOME | World | Business | Sport | Weather\n{COUNCIL}\n"
        "Share this article on Facebook and Twitter!\n"
        "© 2023 Riverside Media. All rights reserved",
    )
    news_2 = doc("web/news-2", RECIPE)
    docs = [news_1, news_2, news_3]
    in_group = {d["id"]: int(unit_hash("line-group", d["id"]) * 2) for d in docs}
    assert in_group["web/news-1"] != in_group["web/news-3"]  # the premise of the two-group case

    p = pipeline()
    out = {}
    for groups, name in ((1, "one"), (2, "two")):
        files = store_files(
            tmp_path,
            {"web": [[news_1, news_2], [news_3]]},
            lines={"web"},
            namespace=f"dedup/{name}",
        )
        config = LineDedupConfig(groups, 20)
        numbered = p | f"{name}Numbered" >> beam.Create(files.numbered())
        notes = numbered | f"{name}Lines" >> LineDedup(files, config)
        assert_that(notes, lambda items: all(map(is_compact_note, items)), label=f"{name}Notes")
        survey = {"file": numbered, "lines": notes} | f"{name}Survey" >> Survey(
            files, SurveyConfig(config, ORDER, exact=False)
        )
        none = p | f"{name}NoVerdicts" >> beam.Create([])
        out[name] = applied(p, files, config, survey["cuts"], none, name)
    by_id_text = beam.Map(lambda d: (d["id"], d["text"]))
    assert_that(
        out["one"][KEPT] | "OneIdText" >> by_id_text,
        equal_to([("web/news-1", HARBOUR), ("web/news-2", RECIPE)]),
        label="OneKept",
    )
    assert_that(
        out["one"][REJECTED] | beam.Map(lambda r: (*rejection(r), r["text"], r["detail"])),
        equal_to(
            [
                (
                    "web/news-3",
                    "dedup:lines_too_short",
                    None,
                    14,
                    20,
                    news_3["text"],  # the document as it came in
                    "14 words left < 20 after 3 repeated lines went",
                )
            ]
        ),
        label="OneRejected",
    )
    assert_that(
        out["two"][KEPT] | "TwoIdText" >> by_id_text,
        equal_to([(d["id"], d["text"]) for d in docs]),
        label="TwoKept",
    )
    assert_that(out["two"][REJECTED], equal_to([]), label="TwoRejected")
    result = p.run()
    assert counter(result, "dedup/one/web", "documents_line_deduplicated") == 1
    assert counter(result, "dedup/one/web", "removed_lines") == 1
    assert counter(result, "dedup/two/web", "documents_line_deduplicated") == 0


# -- exact dedup --------------------------------------------------------------------------------
CAFE = (
    "The café on the corner of Station Road has reopened after a year of repairs. The new "
    "owners kept the tiled floor and the old wooden counter, and they still bake the scones "
    "every morning."
)
TRAIN = (
    "The last train to the coast now leaves at half past eleven, an hour later than before, "
    "because of the summer festival."
)
MUSEUM = "The museum is closed on Mondays and on public holidays."


def test_exact_dedup_keeps_the_first_copy_in_the_keep_order(tmp_path):
    """Copies that differ only in case, spacing or Unicode composition are one text, across
    the sources of a group. The survivor is the best by the rules in order: a ranked source
    before a better quality score, then the higher score, then (all else equal) the smaller
    id. The other copies are rejected naming it."""
    order = KeepOrder(("source_priority", "quality_score", "length"), {"wikipedia": 0, "web": 1})
    decomposed = unicodedata.normalize("NFD", CAFE)
    assert decomposed != CAFE
    web = [
        doc("web/cafe-1", CAFE, 0.9),
        doc("web/train-1", TRAIN, 0.25),
        doc("web/train-2", TRAIN, 0.75),
        doc("web/museum-2", MUSEUM),
        doc("web/museum-1", MUSEUM),
        doc("web/unique", HARBOUR, 0.5),
    ]
    wikipedia = [doc("wikipedia/cafe-2", "  " + CAFE.upper().replace(" ", "\n ", 3), 0.125)]
    books = [doc("books/cafe-3", decomposed, 0.95)]  # an unranked source: after the ranked ones
    sources = {"web": [web], "wikipedia": [wikipedia], "books": [books]}
    files = store_files(tmp_path, sources, groups=[["web", "wikipedia", "books"]])
    by_id = {d["id"]: d for d in web + wikipedia + books}
    lines = LineDedupConfig(1, 50)
    p = pipeline()
    numbered = p | beam.Create(files.numbered())
    none = p | "NoLines" >> beam.Create([])
    survey = {"file": numbered, "lines": none} | Survey(files, SurveyConfig(lines, order, True))
    copies = survey["exact"] | ExactDedup()
    out = applied(p, files, lines, survey["cuts"], {"exact": copies} | Verdicts(), "Exact")
    kept = ["wikipedia/cafe-2", "web/train-2", "web/museum-1", "web/unique"]
    assert_that(out[KEPT] | beam.Map(lambda d: d["id"]), equal_to(kept), label="Kept")
    assert_that(
        out[REJECTED] | beam.Map(lambda r: (*rejection(r), r["detail"], r["text"])),
        equal_to(
            [
                (i, "dedup:exact", survivor, 1.0, 1.0, f"same text as {survivor}", by_id[i]["text"])
                for i, survivor in [
                    ("web/cafe-1", "wikipedia/cafe-2"),
                    ("books/cafe-3", "wikipedia/cafe-2"),
                    ("web/train-1", "web/train-2"),
                    ("web/museum-2", "web/museum-1"),
                ]
            ]
        ),
        label="Rejected",
    )
    result = p.run()
    assert counter(result, "dedup/web", "removed_exact") == 3
    assert counter(result, "dedup/books", "removed_exact") == 1


# -- near dedup ---------------------------------------------------------------------------------
LIGHTHOUSE = (
    "The lighthouse on the northern headland was built in 1858, after a winter storm drove "
    "three cargo ships onto the rocks below the cliffs. Its first keeper, a retired sailor "
    "named Thomas Baird, lived in the small stone cottage beside the tower with his wife and "
    "four children. Every evening he climbed the spiral staircase to trim the wicks and polish "
    "the great brass lens, and every morning he wrote down the weather, the passing ships and "
    "the state of the sea in a leather logbook that the town museum still keeps on display "
    "today, next to his telescope and a faded photograph of the family."
)
BAKERY = (
    "The little bakery on Mill Street opens at six in the morning, but the ovens are lit long "
    "before dawn. Maria and her brother knead the dough by hand, shape the loaves on a floured "
    "oak table and leave them to rise under linen cloths while the first customers gather "
    "outside. Regulars say the rye bread tastes exactly as it did when their grandparents "
    "bought it, and the family insists that the secret is nothing more than patience, good "
    "flour and a sourdough starter that has been fed every single day for more than forty "
    "years, ever since the shop first opened its doors."
)
# Near copies: two words changed in each. A copy is about 0.82 similar (word 5-grams) to its
# original, two copies of one original with different edits about 0.67: below 0.8.
LIGHTHOUSE_1 = replace_once(
    replace_once(LIGHTHOUSE, "four children", "five children"), "spiral stair", "narrow stair"
)
LIGHTHOUSE_2 = replace_once(
    replace_once(LIGHTHOUSE, "leather logbook", "canvas logbook"), "winter storm", "violent storm"
)
BAKERY_1 = replace_once(
    replace_once(BAKERY, "her brother", "her sister"), "the rye bread", "the black bread"
)
BAKERY_2 = replace_once(replace_once(BAKERY, "oak table", "pine table"), "good flour", "fine flour")


def similarity(a: str, b: str) -> float:
    return exact_jaccard(shingle_hashes(a, 5), shingle_hashes(b, 5))


def near_nodes(p, files: DedupFiles, order: KeepOrder, verify: str, label: str):
    """Survey -> ExactDedup -> NearDuplicates, as the dedup stage composes them (no lines)."""
    lines = LineDedupConfig(1, 50)
    numbered = p | f"{label}Files" >> beam.Create(files.numbered())
    none = p | f"{label}NoLines" >> beam.Create([])
    survey = {"file": numbered, "lines": none} | f"{label}Survey" >> Survey(
        files, SurveyConfig(lines, order, True)
    )
    copies = survey["exact"] | f"{label}Exact" >> ExactDedup()
    skip = copies | f"{label}Skip" >> beam.Map(lambda c: (file_of(c[0]), row_of(c[0])))
    config = NearDedupConfig(5, 128, 1, verify, 0.001, 64, order)
    inputs = {"file": numbered, "cuts": survey["cuts"], "skip": skip}
    nodes = inputs | f"{label}Near" >> NearDuplicates(files, lines, config)
    return nodes, copies, survey["cuts"]


def test_near_dedup_from_documents_to_decisions(tmp_path):
    """Real paragraphs and their near copies through Survey, ExactDedup, NearDuplicates,
    KeepOrRemove, `decision`, ClusterSizes, Verdicts and ApplyVerdicts, as the dedup stage
    composes them.

    The lighthouse copies form a chain (each copy is near the original, not near the other):
    the best copy stays, the original goes as its near copy, and the other copy, whose only
    neighbour went, stays. The bakery copies form a star around the original, which stays.
    An exact copy of a bakery copy is repointed to the bakery original, the final survivor;
    it never becomes a node itself."""
    order = KeepOrder(("quality_score",), {})
    docs = [
        doc("web/lighthouse-0", LIGHTHOUSE, 0.625),
        doc("web/lighthouse-1", LIGHTHOUSE_1, 0.875),
        doc("web/lighthouse-2", LIGHTHOUSE_2, 0.375),
        doc("web/bakery-0", BAKERY, 0.875),
        doc("web/bakery-1", BAKERY_1, 0.5),
        doc("web/bakery-2", BAKERY_2, 0.25),
        doc("web/bakery-1-copy", BAKERY_1.replace(". ", ".\n\n"), 0.125),
        doc("web/harbour", HARBOUR, 0.5),
        doc("web/empty", "", 0.5),  # no shingles: never a node, kept
    ]
    files = store_files(tmp_path, {"web": [docs[:4], docs[4:]]})
    key = keys_by_id(files)
    text = {d["id"]: d["text"] for d in docs}
    edges = {
        ("web/lighthouse-0", "web/lighthouse-1"),
        ("web/lighthouse-0", "web/lighthouse-2"),
        ("web/bakery-0", "web/bakery-1"),
        ("web/bakery-0", "web/bakery-2"),
    }
    for a, b in edges:
        assert 0.8 <= similarity(text[a], text[b]) < 0.85
    assert similarity(LIGHTHOUSE_1, LIGHTHOUSE_2) < 0.7
    assert similarity(BAKERY_1, BAKERY_2) < 0.7
    expected_neighbours = {}
    for a, b in edges:
        expected_neighbours.setdefault(key[a], {})[key[b]] = similarity(text[a], text[b])
        expected_neighbours.setdefault(key[b], {})[key[a]] = similarity(text[a], text[b])
    priority = {key[d["id"]]: order.priority(d) for d in docs}

    def check_nodes(items):
        assert {i for i, _ in items} == set(expected_neighbours)
        for doc_id, node in items:
            assert node.id == doc_id and node.status == UNDECIDED
            assert node.priority == priority[doc_id]
            assert set(node.neighbours) == set(expected_neighbours[doc_id])
            for other, (other_priority, sim) in node.neighbours.items():
                assert other_priority == priority[other]
                assert sim == pytest.approx(expected_neighbours[doc_id][other])

    # Verified on the MinHash signatures instead: their estimate is within about 0.035 of the
    # true similarity at 0.8, so the pair for it is a closer one (a single word changed).
    bakery_3 = replace_once(BAKERY, "linen cloths", "cotton cloths")
    close = similarity(BAKERY, bakery_3)
    assert close > 0.9
    estimated_docs = [docs[3], doc("web/bakery-3", bakery_3, 0.5), doc("web/harbour", HARBOUR)]
    estimated_files = store_files(tmp_path / "estimated", {"web": [estimated_docs]})

    def check_estimated(items):
        assert {i for i, _ in items} == {doc_key(0, 0), doc_key(0, 1)}
        for _, node in items:
            ((_, (_, sim)),) = node.neighbours.items()
            assert abs(sim - close) < 0.05 and sim != close

    p = pipeline()
    nodes, copies, cuts = near_nodes(p, files, order, "exact", "Exact")
    final = nodes | KeepOrRemove(4)
    decisions = final | beam.FlatMap(decision)
    verdicts = {"exact": copies, "decisions": decisions} | Verdicts()
    out = applied(p, files, LineDedupConfig(1, 50), cuts, verdicts, "Web")
    estimated, _, _ = near_nodes(p, estimated_files, order, "estimated", "Estimated")

    sim = expected_neighbours[key["web/lighthouse-0"]][key["web/lighthouse-1"]]
    bakery = expected_neighbours[key["web/bakery-0"]]
    assert_that(nodes, check_nodes, label="Nodes")
    assert_that(estimated, check_estimated, label="EstimatedNodes")
    assert_that(
        decisions | beam.Map(lambda kv: (kv[0], kv[1] and (kv[1][0], round(kv[1][1], 6)))),
        equal_to(
            [
                (key["web/lighthouse-1"], None),
                (key["web/lighthouse-0"], ("web/lighthouse-1", round(sim, 6))),
                (key["web/lighthouse-2"], None),
                (key["web/bakery-0"], None),
                (key["web/bakery-1"], ("web/bakery-0", round(bakery[key["web/bakery-1"]], 6))),
                (key["web/bakery-2"], ("web/bakery-0", round(bakery[key["web/bakery-2"]], 6))),
            ]
        ),
        label="Decisions",
    )
    assert_that(
        final | ClusterSizes() | beam.MapTuple(lambda group, sizes: (group, json.loads(sizes))),
        equal_to([(0, {"1": 1, "2": 1, "3": 1})]),
        label="Clusters",
    )
    assert_that(
        out[KEPT] | beam.Map(lambda d: d["id"]),
        equal_to(
            ["web/lighthouse-1", "web/lighthouse-2", "web/bakery-0", "web/harbour", "web/empty"]
        ),
        label="Kept",
    )
    assert_that(
        out[REJECTED] | beam.Map(lambda r: (r["id"], r["reason"], r["duplicate_of"])),
        equal_to(
            [
                ("web/lighthouse-0", "dedup:near", "web/lighthouse-1"),
                ("web/bakery-1", "dedup:near", "web/bakery-0"),
                ("web/bakery-2", "dedup:near", "web/bakery-0"),
                ("web/bakery-1-copy", "dedup:exact", "web/bakery-0"),
            ]
        ),
        label="Rejected",
    )
    p.run()


def chain_nodes() -> tuple[list[Node], dict[str, tuple], list[tuple[str, str, float]]]:
    """Nodes of three near-duplicate graphs, every edge with its own similarity:
    a chain of alternating priorities (a0..a6), a chain in falling priority (b0..b4, one
    decision per round) and a star (c0 in the middle)."""
    ranks = {"a0": 5, "a1": 3, "a2": 6, "a3": 1, "a4": 4, "a5": 0, "a6": 2}
    ranks |= {f"b{i}": 10 + i for i in range(5)} | {f"c{i}": 20 + i for i in range(4)}
    priorities = {i: (rank, i) for i, rank in ranks.items()}
    edges = [(f"a{i}", f"a{i + 1}", 0.81 + 0.01 * i) for i in range(6)]
    edges += [(f"b{i}", f"b{i + 1}", 0.9 + 0.01 * i) for i in range(4)]
    edges += [("c0", f"c{i}", 0.95 + 0.01 * i) for i in range(1, 4)]
    neighbours: dict[str, dict] = {i: {} for i in priorities}
    for a, b, sim in edges:
        neighbours[a][b] = (priorities[b], sim)
        neighbours[b][a] = (priorities[a], sim)
    return [Node(i, priorities[i], neighbours[i]) for i in priorities], priorities, edges


def test_keep_or_remove_reaches_the_greedy_decisions_with_few_or_many_rounds():
    """The distributed rounds give the sequential greedy rule's decisions, each removed node
    naming its best kept neighbour, whether eight rounds are allowed or one round leaves
    most nodes to the final local pass; ClusterSizes counts the clusters they form. The
    rounds stop early: settled nodes leave them, so after the falling chain's five
    decisions the remaining rounds carry nothing, and with no nodes no round carries any."""
    nodes, priorities, edges = chain_nodes()
    expected = greedy(priorities, edges)
    # The premise, by hand: a4 and a2 have two kept neighbours and name the better one.
    assert expected["a4"] == ("a5", pytest.approx(0.85))
    assert expected["a2"] == ("a3", pytest.approx(0.83))
    kept = sorted(i for i, d in expected.items() if d is None)
    assert kept == ["a1", "a3", "a5", "b0", "b2", "b4", "c0"]

    def check_final(items):
        assert sorted(n.id for n in items) == sorted(priorities)
        for node in items:
            assert node.status == (NODE_KEPT if expected[node.id] is None else REMOVED)

    p = pipeline()
    created = p | beam.Create([(n.id, n) for n in nodes])
    for rounds in (8, 1):
        final = created | f"Rounds{rounds}" >> KeepOrRemove(
            rounds, lambda _, r=rounds: f"dedup/rounds{r}"
        )
        assert_that(final, check_final, label=f"Final{rounds}")
        assert_that(
            final | f"Decisions{rounds}" >> beam.FlatMap(decision),
            equal_to(list(expected.items())),
            label=f"Decisions{rounds}",
        )
        assert_that(
            final
            | f"Clusters{rounds}" >> ClusterSizes()
            | f"Parse{rounds}" >> beam.MapTuple(lambda _, sizes: json.loads(sizes)),
            # a: a5+a4+a6, a3+a2, a1+a0; b: b0+b1, b2+b3, b4; c: c0 and its three leaves
            equal_to([{"1": 1, "2": 4, "3": 1, "4": 1}]),
            label=f"Clusters{rounds}",
        )
    empty = (
        p | "NoNodes" >> beam.Create([]) | "EmptyRounds" >> KeepOrRemove(8, lambda _: "dedup/empty")
    )
    assert_that(empty, equal_to([]), label="Empty")
    result = p.run()

    def rounds_with_nodes(namespace: str) -> list[int]:
        found = result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]
        per_round = {c.key.metric.name: c.committed for c in found}
        used = rounds_used(per_round)
        return [per_round[f"{ROUND_COUNTER}{r:03d}"] for r in range(used)]

    # Round 0 keeps a1, a3, a5, b0 and c0, which leave; round 1 removes their neighbours,
    # who leave too; then the falling chain decides one node a round.
    assert rounds_with_nodes("dedup/rounds8") == [16, 11, 3, 2, 1]
    assert rounds_with_nodes("dedup/rounds1") == [16]
    assert rounds_with_nodes("dedup/empty") == []


def test_verdicts_reject_near_copies_and_repoint_exact_copies(tmp_path):
    """Removed documents become dedup:near rejects naming their survivor with the similarity
    against the threshold; documents kept or never near a copy stay; an exact copy of a
    removed document now names the final survivor, an exact copy of a kept one is unchanged."""
    docs = [doc(f"web/d{i}", f"Text of document {i}.") for i in range(1, 5)]
    docs += [doc(f"web/e{i}", f"TEXT of document {of}.") for i, of in ((1, 2), (2, 4), (3, 1))]
    files = store_files(tmp_path, {"web": [docs]})
    key = keys_by_id(files)
    copies = [  # e2's survivor d4 was never near anything; e3's, d1, is a kept node
        (key[f"web/e{i}"], key[f"web/d{of}"], f"web/d{of}") for i, of in ((1, 2), (2, 4), (3, 1))
    ]
    decisions = [
        (key["web/d1"], None),
        (key["web/d2"], ("web/d1", 0.9)),
        (key["web/d3"], ("web/d1", 0.85)),
    ]
    lines = LineDedupConfig(1, 50)
    p = pipeline()
    verdicts = {
        "exact": p | "Copies" >> beam.Create(copies),
        "decisions": p | "Decisions" >> beam.Create(decisions),
    } | Verdicts()
    out = applied(p, files, lines, p | "NoCuts" >> beam.Create([]), verdicts, "Web")
    assert_that(out[KEPT] | beam.Map(lambda d: d["id"]), equal_to(["web/d1", "web/d4"]))

    def fields(r):
        return r["id"], r["reason"], r["duplicate_of"], r["value"], r["threshold"], r["detail"]

    assert_that(
        out[REJECTED] | beam.Map(fields),
        equal_to(
            [
                (
                    "web/d2",
                    "dedup:near",
                    "web/d1",
                    0.9,
                    0.8,
                    "jaccard 0.900 >= 0.8 with web/d1 (its cluster)",
                ),
                (
                    "web/d3",
                    "dedup:near",
                    "web/d1",
                    0.85,
                    0.8,
                    "jaccard 0.850 >= 0.8 with web/d1 (its cluster)",
                ),
                (
                    "web/e1",
                    "dedup:exact",
                    "web/d1",
                    0.9,
                    1.0,
                    "same text as web/d2, itself a near copy (jaccard 0.900) of web/d1",
                ),
                ("web/e2", "dedup:exact", "web/d4", 1.0, 1.0, "same text as web/d4"),
                ("web/e3", "dedup:exact", "web/d1", 1.0, 1.0, "same text as web/d1"),
            ]
        ),
        label="Rejected",
    )
    result = p.run()
    assert counter(result, "dedup/web", "removed_near") == 2
    assert counter(result, "dedup/web", "removed_exact") == 3


# -- mixing -------------------------------------------------------------------------------------
def token_docs(lengths: list[int]) -> list[tuple[str, np.ndarray]]:
    """(id, tokens) with token ids that say which document and position they are."""
    return [
        (f"doc-{k}", np.arange(100 * (k + 1), 100 * (k + 1) + n, dtype=np.uint32))
        for k, n in enumerate(lengths)
    ]


def token_file(path, docs: list[tuple[str, np.ndarray]]) -> None:
    """Documents written as the tokenize stage writes them, in record batches of three."""
    schema = token_schema(32000)
    rows = [{"id": i, "source": "x", "num_tokens": len(t), "tokens": t.tolist()} for i, t in docs]
    with pa.ipc.new_file(str(path), schema) as writer:
        writer.write_table(pa.Table.from_pylist(rows, schema=schema), max_chunksize=3)


def cost(n_tokens: int) -> int:
    return n_tokens + 2  # BOS + document + EOS


def partial_epoch(docs, source: str, epoch: int, budget: int) -> list[tuple]:
    """The documents of a partial epoch by hand: in the order of their hashes, whole while
    they fit, then one cut to the budget left (its BOS and the tokens that fit, no EOS):
    (id, its row, tokens taken, complete)."""
    chosen = []
    for row, (doc_id, tokens) in sorted(
        enumerate(docs), key=lambda d: unit_hash(SEED, "select", source, epoch, d[1][0])
    ):
        if cost(len(tokens)) <= budget:
            chosen.append((doc_id, row, len(tokens), True))
            budget -= cost(len(tokens))
        else:
            chosen.append((doc_id, row, budget - 1, False))
            break
    return chosen


def test_source_instances_take_whole_epochs_then_an_exact_budget():
    """Every document once per whole epoch; then documents in hash order until the partial
    epoch's budget, the last one cut so that the partial epoch holds exactly that many tokens
    (BOS and EOS included). A source with no target gives nothing. Only ids, keys and token
    counts travel."""
    docs = token_docs([5, 9, 3, 12, 7, 4])
    available = sum(cost(len(t)) for _, t in docs)
    assert available == 52
    plans = {
        "web": SourcePlan("web", available, 2 * available + 23, 2, 23),
        "books": SourcePlan("books", available, 30, 0, 30),
        "code": SourcePlan("code", available, available, 1, 0),
        "empty": SourcePlan("empty", available, 0, 0, 0),
    }
    expected = []
    for index, (name, plan) in enumerate(plans.items()):
        for epoch in range(plan.full_epochs):
            expected += [
                (name, index, epoch, i, doc_key(7, row), len(t), True)
                for row, (i, t) in enumerate(docs)
            ]
        if plan.remainder_tokens:
            partial = partial_epoch(docs, name, plan.full_epochs, plan.remainder_tokens)
            # The premise: the budget ends inside a document, with room for its BOS and a token.
            assert not partial[-1][3] and partial[-1][2]
            assert sum(n + 1 + c for _, _, n, c in partial) == plan.remainder_tokens
            expected += [
                (name, index, plan.full_epochs, i, doc_key(7, row), n, c)
                for i, row, n, c in partial
            ]

    p = pipeline()
    created = p | beam.Create([(doc_key(7, row), i, len(t)) for row, (i, t) in enumerate(docs)])
    instances = [
        created
        | name
        >> SourceInstances(
            SourceSampling(name, index, SEED), p | f"{name}/Plan" >> beam.Create([plan])
        )
        for index, (name, plan) in enumerate(plans.items())
    ]
    assert_that(instances | beam.Flatten() | beam.Map(tuple), equal_to(expected))
    p.run()


def packed_by_hand(
    instances: list[Instance], tokens: dict[int, np.ndarray], seq_len: int, groups: int
):
    """Rows by the documented rule: each instance in a group by its hash, each group one
    BOS ... EOS stream in hash order cut into rows; the leftovers of the groups, in group
    order, one more stream (group `groups`) whose own leftover is dropped. Also the tokens
    of each source in the rows."""
    row = seq_len + 1
    streams: dict[int, list[tuple[int, str]]] = {}
    for x in sorted(
        instances, key=lambda x: (unit_hash(SEED, "order", x.source, x.epoch, x.doc_id), x.doc_id)
    ):
        group = int(unit_hash(SEED, "group", x.source, x.epoch, x.doc_id) * groups)
        piece = [BOS_ID, *tokens[x.key][: x.length].tolist()] + ([EOS_ID] if x.complete else [])
        streams.setdefault(group, []).extend((t, x.source) for t in piece)
    rows, tail = {}, []
    for group in sorted(streams):
        used = len(streams[group]) // row * row
        rows[group] = streams[group][:used]
        tail += streams[group][used:]
    if tail:
        rows[groups] = tail[: len(tail) // row * row]
    by_group = {
        g: np.array([t for t, _ in r], dtype=np.uint32).reshape(-1, row) for g, r in rows.items()
    }
    per_source: dict[str, int] = {}
    for r in rows.values():
        for _, source in r:
            per_source[source] = per_source.get(source, 0) + 1
    return by_group, per_source, len(tail) % row


def test_pack_rows_then_write_shards_in_the_global_row_order(tmp_path):
    """Rows of seq_len + 1 tokens: every group's instances in hash order with BOS and EOS (no
    EOS after a cut document), what does not fill a row carried over to one extra group, so
    that less than one row's worth is lost in all; groups in index order are the global row
    order, cut into shards of rows_per_shard rows (the last the rest) even where a group
    spans a boundary. The token files are read again to fill them; tokens and documents are
    counted per source."""
    web = token_docs([5, 9, 3, 12, 7, 4, 6])
    books = token_docs([11, 2, 8])
    token_file(tmp_path / "web.arrow", web)
    token_file(tmp_path / "books.arrow", books)
    paths = [str(tmp_path / "web.arrow"), str(tmp_path / "books.arrow")]
    tokens = {doc_key(0, r): t for r, (_, t) in enumerate(web)}
    tokens |= {doc_key(1, r): t for r, (_, t) in enumerate(books)}
    instances = [
        Instance("web", 0, e, i, doc_key(0, r), len(t), True)
        for e in (0, 1)
        for r, (i, t) in enumerate(web)
    ]
    instances += [
        Instance("books", 1, 0, i, doc_key(1, r), len(t), True) for r, (i, t) in enumerate(books)
    ]
    instances.append(Instance("books", 1, 1, "doc-0", doc_key(1, 0), 4, False))
    packing = Packing(["web", "books"], 7, 3, SEED, "mix/test")
    expected, per_source, lost = packed_by_hand(instances, tokens, 7, 3)
    # The premises: all three groups used, and their tails fill at least one more row.
    assert set(expected) == {0, 1, 2, 3} and len(expected[3]) >= 1
    total = sum(x.length + 1 + x.complete for x in instances)
    assert sum(r.size for r in expected.values()) + lost == total and lost < 8
    global_rows = np.concatenate([expected[g] for g in sorted(expected)])
    sizes = [min(3, len(global_rows) - start) for start in range(0, len(global_rows), 3)]
    assert len(sizes) >= 3 and any(len(expected[g]) % 3 for g in expected)  # groups span shards

    out = tmp_path / "shards"
    out.mkdir()
    p = pipeline()
    packed = p | beam.Create(instances) | PackRows(packing)
    files = p | "Files" >> beam.Create([(0, None), (1, None)])
    layout = ShardLayout(str(out), 7, 32000, 3)
    written = {"file": files, **packed} | WriteShards(paths, layout, packing)
    assert_that(written, equal_to(sizes))
    result = p.run()
    assert counter(result, "mix/test", "tokens/web") == per_source["web"]
    assert counter(result, "mix/test", "tokens/books") == per_source["books"]
    assert counter(result, "mix/test", "documents/web") == 14
    assert counter(result, "mix/test", "documents/books") == 4

    assert sorted(os.listdir(out)) == [shard_name(i) for i in range(len(sizes))]
    table = pa.ipc.open_file(str(out / shard_name(0))).read_all()
    assert table.schema.field("tokens").type == pa.list_(pa.uint16(), 8)
    reader = ShardReader(str(out), verify=False)
    assert len(reader) == len(global_rows)
    assert np.array_equal(np.stack(list(reader.iter_from(0))), global_rows)


def held_out_by_hand(ids: list[str], source: str, fraction: float) -> set[str]:
    """The documented rule: ids whose hash is below the fraction; in a source of two or
    more, the smallest hash always and the largest never."""
    ranked = sorted((unit_hash(SEED, "validation", source, i), i) for i in ids)
    if len(ranked) < 2:
        return set()
    return {i for u, i in ranked[:-1] if u < fraction} | {ranked[0][1]}


def test_hold_out_splits_by_hash_and_writes_the_held_out_documents_apart(tmp_path):
    """Each source's documents go to validation or training, never both, by a hash of their
    id: a fraction of them, at least one where there are two or more, never all, none of a
    source of one document. The training part's plan counts only its own tokens. Both parts
    are written in one pass over the token file, each into shards of its own, with the
    held-out documents' ids."""
    web = token_docs([(5 * k) % 37 + 3 for k in range(40)])
    token_file(tmp_path / "web.arrow", web)
    sources = {  # name: (documents, fraction)
        "web": (web, 0.25),
        "pair": (token_docs([4, 6]), 1e-12),  # a tiny fraction still holds one out
        "most": (token_docs([4, 6, 8]), 0.999999),  # a fraction near 1 keeps one to train
        "single": (token_docs([9]), 0.5),  # nothing to spare
    }
    expected = {
        name: held_out_by_hand([i for i, _ in d], name, f) for name, (d, f) in sources.items()
    }
    assert len(expected["web"]) == 10 and len(expected["pair"]) == 1
    assert len(expected["most"]) == 2 and not expected["single"]
    parts = {"validation": expected["web"], "training": {i for i, _ in web} - expected["web"]}
    tokens = {part: sum(cost(len(t)) for i, t in web if i in ids) for part, ids in parts.items()}

    p = pipeline()
    splits = {}
    for name, (docs, fraction) in sources.items():
        created = p | f"{name}/Docs" >> beam.Create(
            [(doc_key(0, row), i, len(t)) for row, (i, t) in enumerate(docs)]
        )
        config = HoldOutConfig(name, fraction, SEED, "mix/test", 1000)
        splits[name] = created | f"{name}/HoldOut" >> HoldOut(config)
        for part in ("validation", "training"):
            ids = splits[name][part] | f"{name}/{part}/Ids" >> beam.Map(lambda d: d[1])
            wanted = (
                expected[name] if part == "validation" else {i for i, _ in docs} - expected[name]
            )
            assert_that(ids, equal_to(wanted), label=f"{name}/{part}/Check")
    planned = SourcePlan("web", tokens["training"], 1000, *divmod(1000, tokens["training"]))
    assert_that(splits["web"]["plan"], equal_to([planned]), label="Plan")
    out = {part: tmp_path / part for part in parts}
    layouts = {part: ShardLayout(str(folder), 7, 32000, 3) for part, folder in out.items()}
    training = Packing(["web"], 7, 2, SEED, "mix/test/training")
    held = Packing(["web"], 7, 2, SEED, "mix/test/held", ids_dir=str(out["validation"]))
    packed = (
        splits["web"]["training"]
        | beam.Map(lambda d: Instance("web", 0, 0, d[1], d[0], d[2], True))
        | "PackTraining" >> PackRows(training)
    )
    for key, rows in (splits["web"]["validation"] | PackHeldOut(held)).items():
        packed[f"web/{key}"] = rows
    files = p | "Files" >> beam.Create([(0, None)])
    more = {"web": ShardSet(layouts["validation"], held)}
    {"file": files, **packed} | WriteShards(
        [str(tmp_path / "web.arrow")], layouts["training"], training, more
    )
    result = p.run()
    assert counter(result, "mix/test", "held_out_documents/web") == 10
    assert counter(result, "mix/test", "held_out_tokens/web") == tokens["validation"]
    assert counter(result, "mix/test", "held_out_documents/single") == 0

    listed = sorted(out["validation"].glob("ids-*.txt"))
    ids = [line for path in listed for line in path.read_text().splitlines()]
    assert sorted(ids) == sorted(expected["web"])
    for part, wanted in parts.items():
        rows = np.stack(list(ShardReader(str(out[part]), verify=False).iter_from(0)))
        # Only that part's documents (doc-k's tokens are 100(k+1)...), less than a row lost.
        owners = {f"doc-{t // 100 - 1}" for t in rows.ravel() if t >= 100}
        assert owners <= wanted and len(owners) >= len(wanted) - 2, part
        assert tokens[part] - 8 < rows.size <= tokens[part], part


# -- quality ------------------------------------------------------------------------------------
LIBRARY = (
    "The city library will extend its opening hours from the first of March. On weekdays the "
    "reading rooms will stay open until nine in the evening, and on Saturdays the children's "
    "section will host a storytelling hour at ten. The head librarian said that the change "
    "follows a survey in which most visitors asked for later hours. New computers have also "
    "been installed on the second floor. Members can reserve them online or at the front desk."
)
PLANTING = [
    "Volunteers planted more than two hundred oak and beech saplings along the river on Sunday.",
    "The project is part of a plan to restore the woodland that was cleared for farming a "
    "century ago.",
    "Local schools have each adopted a section of the bank, and pupils will measure the young "
    "trees every spring.",
    "The organisers hope that the new wood will shelter birds, bats and otters within twenty "
    "years.",
    "More planting days are planned for the autumn.",
]
PLANTING_PAGE = "\n".join(
    [
        *PLANTING,
        "Please enable JavaScript to view the comments powered by Disqus.",
        "Related stories",
    ]
)
ROAD_CLOSED = (
    "Road closed on Friday. The bridge on Elm Street is shut for repairs until further notice."
)
PLACEHOLDER = (
    "Our new website is still being built, and some of the pages below show placeholder text "
    "such as lorem ipsum dolor sit amet until the final copy arrives from the editors. We are "
    "sorry for the inconvenience and thank you for your patience. In the meantime you can still "
    "reach the office by telephone on weekdays between nine and five. Opening hours and prices "
    "have not changed. The online shop will return in the spring."
)
ONE_LONG_SENTENCE = (
    "The annual village fair, which has been held on the green behind the church every August "
    "for as long as anyone can remember, will this year include a dog show, a tug of war "
    "between the two football clubs, a cake competition judged by the headmistress and a brass "
    "band that has promised to play until the last visitor goes home, and the organisers hope "
    "that the weather will be kind to them for once."
)


def langid_table(texts: dict[str, str]) -> pa.Table:
    rows = [
        {
            **make_document(
                "web", f"pages.jsonl#{doc_id}", text, url=f"https://example.org/{doc_id}"
            ),
            "id": doc_id,
            "language": "en",
            "language_score": 0.97,
        }
        for doc_id, text in texts.items()
    ]
    return pa.Table.from_pylist(rows, schema=document_schema("langid"))


def test_quality_filters_keep_clean_and_reject_with_the_rule_that_failed():
    """Gopher's quality rules then C4's, on two Tables: a good page is kept as it is, a page
    with a comments notice and a bare link line is kept without those lines (and counted as
    cleaned); a notice is too short for Gopher; placeholder text and a page of one long
    sentence fail C4. Kept rows get their word count in the quality schema, rejects their
    rule, value and threshold in the reject schema; no Table is empty."""
    tables = [
        langid_table(
            {"web/library": LIBRARY, "web/road": ROAD_CLOSED, "web/planting": PLANTING_PAGE}
        ),
        langid_table({"web/placeholder": PLACEHOLDER, "web/fair": ONE_LONG_SENTENCE}),
    ]
    short_words = word_count(ROAD_CLOSED)
    assert short_words < 50
    config = QualityFiltering(
        filters=[GopherQualityConfig(), C4Config()],
        classifier=None,
        namespace="quality/web",
        max_document_seconds=None,
    )

    def check_kept(items):
        assert len(items) == 1 and all(t.schema == document_schema("quality") for t in items)
        rows = {r["id"]: r for t in items for r in t.to_pylist()}
        assert sorted(rows) == ["web/library", "web/planting"]
        assert rows["web/library"]["text"] == LIBRARY
        assert rows["web/planting"]["text"] == "\n".join(PLANTING)
        for row in rows.values():
            assert row["word_count"] == word_count(row["text"])
            assert row["language"] == "en" and row["url"] == f"https://example.org/{row['id']}"
            assert row["perplexity"] is None and row["quality_score"] is None

    def check_rejected(items):
        assert len(items) == 2 and all(t.schema == reject_schema("quality") for t in items)
        rows = {r["id"]: r for t in items for r in t.to_pylist()}
        assert {i: r["reason"] for i, r in rows.items()} == {
            "web/road": "quality:gopher_quality.word_count",
            "web/placeholder": "quality:c4.lorem_ipsum",
            "web/fair": "quality:c4.sentences",
        }
        road, fair = rows["web/road"], rows["web/fair"]
        assert (road["value"], road["threshold"]) == (short_words, 50)
        assert road["detail"] == f"{short_words} < 50"
        assert road["text"] == ROAD_CLOSED and road["duplicate_of"] is None
        assert (fair["value"], fair["threshold"]) == (1, 5)

    p = pipeline()
    out = {"tables": p | beam.Create(tables)} | QualityFilters(config)
    assert set(out) == {KEPT, REJECTED}  # no perplexity filter: no cut-offs
    assert_that(out[KEPT], check_kept, label="Kept")
    assert_that(out[REJECTED], check_rejected, label="Rejected")
    result = p.run()
    assert counter(result, "quality/web", "documents_cleaned") == 1


# -- the store ----------------------------------------------------------------------------------
def test_write_stage_then_read_stage_round_trip(tmp_path):
    """Rows written by WriteStage read back by ReadStage as the same rows, and as Tables of
    the columns asked for; the rejects of two streams land together in the rejects folder
    with their reasons; Tables of a stage written as "tables" read back alike; a stage with
    no output reads as nothing."""
    store = StageStore(str(tmp_path))
    kept = [
        make_document("web", f"news.jsonl#{n}", text, url=f"https://example.org/{n}", title=title)
        for n, (text, title) in enumerate(
            [(HARBOUR, "Dredging"), (LIBRARY, "Library hours"), (CAFE, None)]
        )
    ]
    kept[0]["meta"] = json.dumps({"section": "local"})
    empty = with_rejection(make_document("web", "news.jsonl#3", ""), "extract:empty_text")
    large = with_rejection(
        make_document("web", "news.jsonl#4", MUSEUM * 3),
        "extract:too_large",
        f"{len(MUSEUM * 3)} > 100 bytes",
        value=len(MUSEUM * 3),
        threshold=100,
    )
    table = pa.Table.from_pylist(
        [{**kept[1], "language": "en", "language_score": 0.9}], schema=document_schema("langid")
    )
    reject_table = pa.Table.from_pylist(
        [{**with_rejection(kept[2], "langid:language"), "language": "fr", "language_score": 0.6}],
        schema=reject_schema("langid"),
    )

    p = pipeline()
    {
        KEPT: p | "Kept" >> beam.Create(kept),
        f"{REJECTED}/empty": p | "Empty" >> beam.Create([empty]),
        f"{REJECTED}/large": p | "Large" >> beam.Create([large]),
    } | "WriteRows" >> WriteStage(store, "extract", "web", "rows")
    {
        KEPT: p | "Table" >> beam.Create([table]),
        REJECTED: p | "RejectTable" >> beam.Create([reject_table]),
    } | "WriteTables" >> WriteStage(store, "langid", "web", "tables")
    result = p.run()
    assert counter(result, "extract/web", "kept_text_chars") == sum(len(d["text"]) for d in kept)

    assert parquet_rows(store.parts("extract", "web")) == 3
    assert parquet_rows(store.rejects("extract", "web")) == 2
    assert reject_reasons(store.rejects("extract", "web")) == {
        "extract:empty_text": 1,
        "extract:too_large": 1,
    }
    assert parquet_rows(store.rejects("langid", "web")) == 1
    assert reject_reasons(store.rejects("langid", "web")) == {"langid:language": 1}

    def check_tables(items):
        rows = [r for t in items for r in t.to_pylist()]
        assert all(t.column_names == ["id", "text"] for t in items)
        assert sorted((r["id"], r["text"]) for r in rows) == sorted(
            (d["id"], d["text"]) for d in kept
        )

    p = pipeline()
    assert_that(
        p | "Rows" >> ReadStage(store, "extract", "web", as_rows=True),
        equal_to(kept),
        label="CheckRows",
    )
    assert_that(
        p | "Tables" >> ReadStage(store, "extract", "web", columns=["id", "text"]),
        check_tables,
        label="CheckTables",
    )
    assert_that(
        p | "Langid" >> ReadStage(store, "langid", "web") | beam.FlatMap(lambda t: t.to_pylist()),
        equal_to(table.to_pylist()),
        label="CheckLangid",
    )
    assert_that(
        p | "Nothing" >> ReadStage(store, "quality", "web"), equal_to([]), label="CheckNothing"
    )
    p.run()
