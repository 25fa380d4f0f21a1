"""The filter-tuning commands against the sample recipe built once through every stage."""

import json

import pyarrow.parquet as pq
import pytest

from flows.cli import main
from flows.recipe import load_recipe
from pipelines.explain import explain
from pipelines.stages import StageContext
from pipelines.store import match_files

pytestmark = pytest.mark.integration


def _rows(pattern):
    return [row for path in match_files(pattern) for row in pq.read_table(path).to_pylist()]


def test_train_quality_classifier_prints_held_out_metrics(built_sample, capsys):
    assert main(["train-quality-classifier", str(built_sample)]) == 0
    out = capsys.readouterr().out
    assert "reference classifier (up to date): 77 positive and 127 negative documents" in out
    line = next(line for line in out.splitlines() if line.startswith("held-out"))
    auc = float(line.split("AUC ")[1].split()[0])
    assert auc >= 0.9
    assert "MODEL_CARD.md" in out


def test_explain_filters_agrees_with_the_build(built_sample):
    ctx = StageContext.from_recipe(load_recipe(built_sample))
    explained, cutoffs = explain(ctx, "commoncrawl", 40, seed=3)
    assert len(explained) == 40 and cutoffs is not None
    store = ctx.store
    actual = {r["id"]: r["reason"] for r in _rows(store.rejects("langid", "commoncrawl"))}
    actual.update({r["id"]: r["reason"] for r in _rows(store.rejects("quality", "commoncrawl"))})
    kept = {d["id"] for d in _rows(store.parts("quality", "commoncrawl"))}
    for e in explained:
        doc_id = e.doc["id"]
        assert e.first_drop == actual.get(doc_id), e.doc["url"]
        assert (e.first_drop is None) == (doc_id in kept)
        # Every filter has its say, even after the first drop.
        assert [name for name, _ in e.steps] == ["perplexity", "reference_classifier"]


def test_explain_filters_command_output(built_sample, capsys):
    code = main(["explain-filters", str(built_sample), "--source", "c4", "--sample", "5"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("=> ") == 5 and "c4" in out and out.strip().splitlines()[-1].startswith("5 ")
    main(["explain-filters", str(built_sample), "--source", "c4", "--sample", "3", "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert len(rows) == 3 and all(r["filters"][0]["filter"] == "c4" for r in rows)


def test_explain_filters_unknown_source_is_one_line(built_sample, capsys):
    assert main(["explain-filters", str(built_sample), "--source", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llama-recipe: error: no source 'nope'") and "Traceback" not in err
