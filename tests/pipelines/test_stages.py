"""Every stage as a real Beam pipeline over the sample corpora (no Prefect here)."""

import hashlib
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import sentencepiece as spm

from flows.recipe import load_recipe
from pipelines.registry import PER_SOURCE_STAGES
from pipelines.shards import BOS_ID, EOS_ID, MIXTURE_JSON, ShardReader
from pipelines.store import StageStore, match_files
from tests.conftest import mix_shards

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def built(built_sample):
    recipe = load_recipe(built_sample)
    return recipe, StageStore(recipe.workdir)


def table(pattern):
    files = match_files(pattern)
    return (
        pq.read_table(files[0])
        if len(files) == 1
        else __import__("pyarrow").concat_tables([pq.read_table(f) for f in files])
    )


def test_every_stage_accounts_for_every_document(built):
    recipe, store = built
    for stage in PER_SOURCE_STAGES:
        for source in recipe.sources:
            counts = store.read_manifest(stage, source)["counts"]
            assert counts["kept"] + counts["rejected"] == counts["input"], (stage, source)
    for stage, upstream in [
        ("langid", "extract"),
        ("quality", "langid"),
        ("dedup", "quality"),
        ("decontaminate", "dedup"),
        ("tokenize", "decontaminate"),
    ]:
        for source in recipe.sources:
            assert (
                store.read_manifest(stage, source)["counts"]["input"]
                == store.read_manifest(upstream, source)["counts"]["kept"]
            )


def test_extract_counts_and_reasons(built):
    recipe, store = built
    expected = {
        "commoncrawl": (136, 136, {}),
        "c4": (42, 42, {}),
        "wikipedia": (79, 77, {"extract:redirect": 2}),
        "books": (3, 3, {}),
        "arxiv": (3, 3, {}),
        "stackexchange": (
            10,
            8,
            {"extract:answers_without_question": 1, "extract:not_question_or_answer": 1},
        ),
    }
    for source, (n_in, kept, reasons) in expected.items():
        manifest = store.read_manifest("extract", source)
        assert (manifest["counts"]["input"], manifest["counts"]["kept"]) == (n_in, kept), source
        assert manifest["rejected_by_reason"] == reasons


def test_stage_outputs_are_plain_parquet_with_document_columns(built):
    recipe, store = built
    docs = table(store.parts("dedup", "wikipedia"))
    assert {
        "id",
        "source",
        "text",
        "url",
        "title",
        "language",
        "language_score",
        "word_count",
    } <= set(docs.column_names)
    assert set(docs.column("source").to_pylist()) == {"wikipedia"}
    # ids never change from stage to stage
    extracted = set(table(store.parts("extract", "wikipedia")).column("id").to_pylist())
    assert set(docs.column("id").to_pylist()) <= extracted


def test_langid_drops_foreign_commoncrawl_and_keeps_german_wikipedia(built):
    recipe, store = built
    rejects = {r["url"]: r for r in table(store.rejects("langid", "commoncrawl")).to_pylist()}
    foreign = {
        u: r["language"]
        for u, r in rejects.items()
        if u.startswith(
            ("https://www.beispiel.de", "https://www.exemple.fr", "https://www.ejemplo")
        )
    }
    assert sorted(foreign.values()) == ["de", "de", "de", "es", "fr", "fr"]
    assert all(rejects[u]["reason"] == "langid:language" for u in foreign)
    # A table of numbers and a keyword list are no language at all: dropped too.
    assert {"https://data.example.com/table.txt", "https://cheap.example.net/deals"} <= set(rejects)
    assert all(r["detail"] for r in rejects.values())
    for r in rejects.values():
        assert r["value"] == pytest.approx(r["language_score"])
        if r["reason"] == "langid:low_score":
            assert r["threshold"] == 0.5 and r["value"] < 0.5
        else:
            assert r["threshold"] is None
    assert any(r["reason"] == "langid:low_score" for r in rejects.values())
    wiki = table(store.parts("langid", "wikipedia")).to_pylist()
    assert {d["language"] for d in wiki} == {"en", "de"}
    assert all(0 < d["language_score"] <= 1 for d in wiki)


def test_quality_rejects_carry_filter_value_and_threshold(built):
    recipe, store = built
    manifest = store.read_manifest("quality", "commoncrawl")
    rejects = table(store.rejects("quality", "commoncrawl")).to_pylist()
    assert manifest["counts"]["rejected"] == len(rejects)
    reasons = {r["reason"] for r in rejects}
    assert reasons == {"quality:perplexity.tail", "quality:reference_classifier.score"}
    head, tail = manifest["perplexity_cutoffs"]
    for r in rejects:
        assert r["value"] is not None and r["threshold"] is not None and r["detail"]
        if r["reason"] == "quality:perplexity.tail":
            assert r["value"] == pytest.approx(r["perplexity"]) and r["value"] >= tail
            assert r["threshold"] == pytest.approx(tail)
        else:  # kept by the perplexity filter, then scored below the classifier's threshold
            assert r["perplexity"] < tail
            assert r["value"] == pytest.approx(r["quality_score"]) and r["value"] < 0.5
    assert manifest["rejected_by_filter"] == {
        "perplexity": sum(1 for r in rejects if r["reason"].startswith("quality:perplexity")),
        "reference_classifier": sum(
            1 for r in rejects if r["reason"].startswith("quality:reference_classifier")
        ),
    }


def test_perplexity_cutoffs_are_percentiles_of_the_whole_source(built):
    recipe, store = built
    kept = table(store.parts("quality", "commoncrawl")).to_pylist()
    rejects = table(store.rejects("quality", "commoncrawl")).to_pylist()
    perplexities = sorted(d["perplexity"] for d in kept + rejects)
    head, tail = store.read_manifest("quality", "commoncrawl")["perplexity_cutoffs"]
    n = len(perplexities)
    # CCNet's 30th and 60th percentiles, from bounded-memory quantiles: between the order
    # statistics around each rank.
    for cut, fraction in ((head, 0.30), (tail, 0.60)):
        rank = fraction * (n - 1)
        assert perplexities[int(rank) - 1] <= cut <= perplexities[int(rank) + 2]
    # In-domain text (Wikipedia-like) scores lower than the junk of the crawl.
    by_url = {d["url"]: d["perplexity"] for d in kept + rejects}
    encyclopedia = [p for u, p in by_url.items() if "encyclopedia.example.net" in u]
    shops = [p for u, p in by_url.items() if "www.shop-" in u]
    assert max(encyclopedia) < min(shops)


def test_every_kept_document_has_its_scores(built):
    recipe, store = built
    crawl = table(store.parts("quality", "commoncrawl")).to_pylist()
    assert crawl and all(d["perplexity"] > 0 and d["quality_score"] >= 0.5 for d in crawl)
    # Reference-like pages of the crawl survive; shop pages and forum chatter do not.
    urls = {d["url"] for d in crawl}
    assert sum("encyclopedia.example.net" in u for u in urls) >= 5
    assert not any("www.shop-" in u for u in urls)
    wiki = table(store.parts("quality", "wikipedia")).to_pylist()
    assert all(d["perplexity"] is None and d["quality_score"] is None for d in wiki)


def test_c4_rules_clean_lines_and_drop_pages(built):
    recipe, store = built
    kept = table(store.parts("quality", "c4")).to_pylist()
    rejects = table(store.rejects("quality", "c4")).to_pylist()
    # The one-line stub has too few sentences.
    (stub,) = rejects
    assert stub["reason"] == "quality:c4.sentences" and stub["value"] < stub["threshold"] == 5
    # Kept pages were cleaned line by line: no blank lines, every line ends a sentence.
    for doc in kept:
        lines = doc["text"].split("\n")
        assert all(line.strip() and line.endswith((".", "!", "?", '"', "'")) for line in lines)
    assert store.read_manifest("quality", "c4")["documents_cleaned"] == len(kept)


def test_classifier_model_card_and_held_out_metrics(built):
    recipe, store = built
    card = json.loads(store.read_bytes(store.path("train-classifier", "_all", "model_card.json")))
    metrics = card["metrics"]
    assert metrics["auc"] >= 0.9
    assert metrics["positives"] == 77 and metrics["negatives"] == 127
    for model in card["models"]:
        data = store.read_bytes(store.path("train-classifier", "_all", model["file"]))
        assert hashlib.sha256(data).hexdigest() == model["sha256"]
        assert len(data) == model["size_bytes"]
    markdown = store.read_bytes(store.path("train-classifier", "_all", "MODEL_CARD.md")).decode()
    assert f"| {metrics['auc']} |" in markdown


def test_dedup_keeps_one_copy_and_names_it(built):
    from dedup.minhash import exact_jaccard, shingle_hashes

    recipe, store = built
    kinds = {}
    for source in recipe.sources:
        manifest = store.read_manifest("dedup", source)
        kept = {d["id"]: d for d in table(store.parts("dedup", source)).to_pylist()}
        files = match_files(store.rejects("dedup", source))
        rejects = table(store.rejects("dedup", source)).to_pylist() if files else []
        for r in rejects:
            kinds[r["reason"]] = kinds.get(r["reason"], 0) + 1
            if r["reason"] == "dedup:lines_too_short":
                assert r["value"] < r["threshold"] == 50
                continue
            assert r["duplicate_of"] in kept
            other = kept[r["duplicate_of"]]["text"]
            if r["reason"] == "dedup:exact" and r["value"] == 1.0:
                assert " ".join(other.lower().split()) == " ".join(r["text"].lower().split())
            elif r["reason"] == "dedup:exact":  # its twin went as a near copy of `other`
                assert "itself a near copy" in r["detail"] and r["value"] >= 0.8
            else:
                assert r["reason"] == "dedup:near" and r["value"] >= r["threshold"] == 0.8
                similarity = exact_jaccard(shingle_hashes(r["text"]), shingle_hashes(other))
                assert similarity == pytest.approx(r["value"])
        by_kind = manifest["removed_by_kind"]
        assert sum(by_kind.values()) == manifest["counts"]["rejected"] == len(rejects)
        sizes = manifest["cluster_sizes"]
        assert sum((int(size) - 1) * n for size, n in sizes.items()) == by_kind["near"]
    # C4's pages share paragraphs (near copies); the crawl's blog pages share whole paragraphs
    # with each other, which CCNet's line dedup removes.
    assert kinds["dedup:near"] >= 10 and kinds["dedup:exact"] >= 1
    assert kinds["dedup:lines_too_short"] >= 1


def test_tokenizer_has_llama_settings_and_round_trips(built):
    recipe, store = built
    model = store.read_bytes(store.path("train-tokenizer", "_all", "tokenizer.model"))
    sp = spm.SentencePieceProcessor(model_proto=model)
    assert sp.vocab_size() == 1024
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    text = "Bread, 1234 rivers\n  and\ttabs — ünïcode 🍞"
    assert sp.decode(sp.encode(text)) == text
    assert sp.unk_id() not in sp.encode(text)  # byte fallback, never <unk>
    assert [p for p in sp.encode("2024", out_type=str) if p.strip("▁")] == ["2", "0", "2", "4"]


def test_tokenize_output_decodes_back_to_the_documents(built):
    recipe, store = built
    model = store.read_bytes(store.path("train-tokenizer", "_all", "tokenizer.model"))
    sp = spm.SentencePieceProcessor(model_proto=model)
    texts = {d["id"]: d["text"] for d in table(store.parts("dedup", "books")).to_pylist()}
    import pyarrow as pa

    rows = []
    for path in match_files(store.parts("tokenize", "books", ".arrow")):
        rows += pa.ipc.open_file(path).read_all().to_pylist()
    assert len(rows) == len(texts) == 3
    for row in rows:
        assert row["num_tokens"] == len(row["tokens"])
        assert sp.decode(row["tokens"]) == texts[row["id"]]


def test_mix_shards_hit_the_target_proportions(built):
    recipe, store = built
    mixture = json.loads(store.read_bytes(os.path.join(mix_shards(store.workdir), MIXTURE_JSON)))
    weights = recipe.weights()
    assert set(mixture["sources"]) == set(recipe.sources)
    total_rows = mixture["rows"]
    assert mixture["total_tokens_packed"] == total_rows * 129
    # The groups' tails are packed together: less than one row is lost in the whole mixture.
    assert 0 <= mixture["total_tokens_target"] - mixture["total_tokens_packed"] < 129
    # Shards of a fixed row count (the last one holds the rest).
    rows = [shard["rows"] for shard in mixture["shards"]]
    assert set(rows[:-1]) == {recipe.mixture.rows_per_shard} and 0 < rows[-1] <= rows[0]
    assert mixture["total_tokens_target"] >= 1000 * recipe.mixture.seq_len
    for name, s in mixture["sources"].items():
        assert s["target_proportion"] == pytest.approx(weights[name])
        # T >= 1000 L: within 0.1 percentage point of the target.
        assert abs(s["actual_proportion"] - weights[name]) < 0.001, name
        assert s["epochs"] == pytest.approx(s["target_tokens"] / s["available_tokens"])
    assert mixture["sources"]["commoncrawl"]["epochs"] > 1  # small data is repeated


def test_mix_shards_decode_to_real_documents(built):
    recipe, store = built
    reader = ShardReader(mix_shards(store.workdir))
    assert len(reader) == reader.mixture["rows"]
    row = reader[len(reader) // 2]
    assert row.dtype == np.uint16 and row.shape == (129,)
    model = store.read_bytes(store.path("train-tokenizer", "_all", "tokenizer.model"))
    sp = spm.SentencePieceProcessor(model_proto=model)
    corpus = []
    for source in recipe.sources:
        corpus += table(store.parts("dedup", source)).column("text").to_pylist()
    corpus = "\n".join(corpus)
    # What follows each BOS in a row is the start of a real document.
    found = 0
    for index in range(0, len(reader), 3):
        tokens = reader[index].tolist()
        for start in [i for i, t in enumerate(tokens) if t == BOS_ID]:
            # A document ends at EOS, or at the next BOS when the mix cut it short.
            end = next(
                (i for i in range(start + 1, len(tokens)) if tokens[i] in (BOS_ID, EOS_ID)),
                len(tokens),
            )
            piece = tokens[start + 1 : end][:-2]  # the last tokens may be a cut multi-byte char
            if len(piece) > 10:
                assert sp.decode(piece) in corpus
                found += 1
    assert found > 20


def test_builds_are_byte_identical_across_runners(built, tmp_path):
    """A second build, with Beam's runner in two worker processes, gives the same shards
    (same sha256): nothing depends on one process's state or on the order work arrives."""
    from pipelines.registry import STAGES
    from pipelines.stages import STAGE_CLASSES, StageContext, run_stage
    from tests.conftest import write_recipe

    recipe, store = built
    options = {"direct_num_workers": 2, "direct_running_mode": "multi_processing"}
    again = load_recipe(write_recipe(tmp_path, runner={"name": "FnApiRunner", "options": options}))
    ctx = StageContext.from_recipe(again)
    for stage in STAGES:
        run_stage(STAGE_CLASSES[stage](), ctx, list(again.sources))
    first = ShardReader(mix_shards(store.workdir)).mixture
    second = ShardReader(mix_shards(ctx.store.workdir)).mixture
    assert first["shards"] == second["shards"]
    assert first["validation"] == second["validation"]  # held-out shards, sha256 included
    # The tokenizer too: its model names no temporary input file.
    assert first["tokenizer_sha256"] == second["tokenizer_sha256"]


def test_tokenize_rejects_documents_without_tokens(built):
    import pyarrow as pa

    from pipelines.document import reject_schema
    from pipelines.stages.tokenize import TokenizeFn

    recipe, store = built
    docs = table(store.parts("dedup", "books")).slice(0, 2)
    docs = docs.set_column(2, "text", pa.array([docs.column("text")[0].as_py(), ""]))
    fn = TokenizeFn(store.path("train-tokenizer", "_all", "tokenizer.model"), 1024, "t/books")
    fn.setup()
    outputs = list(fn.process(docs))
    kept, rejected = outputs[0], outputs[1]
    assert kept.num_rows == 1 and kept.column("num_tokens")[0].as_py() > 0
    assert rejected.tag == "rejected"
    assert rejected.value.schema == reject_schema("tokenize")
    assert rejected.value.column("reason").to_pylist() == ["tokenize:no_tokens"]
    assert rejected.value.column("id").to_pylist() == [docs.column("id")[1].as_py()]


def test_shards_are_plain_arrow_and_read_from_any_index(built):
    import pyarrow.dataset as ds

    recipe, store = built
    reader = ShardReader(mix_shards(store.workdir))
    # Any Arrow reader sees the same rows (DuckDB, Polars and `datasets` read Arrow IPC files).
    table = ds.dataset(reader.paths, format="arrow").to_table()
    assert table.num_rows == len(reader) and table.column_names == ["tokens"]
    assert table.column("tokens")[7].as_py() == reader[7].tolist()
    # Iteration from a global index continues exactly there, across shard boundaries.
    start = recipe.mixture.rows_per_shard - 2
    rows = list(reader.iter_from(start))
    assert len(rows) == len(reader) - start
    assert all(np.array_equal(a, reader[start + i]) for i, a in enumerate(rows[:5]))
    # Views into the mapped files, not copies.
    assert not reader[0].flags.owndata
