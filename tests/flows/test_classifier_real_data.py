"""The reference classifier on real text: Wikipedia articles against C4 web pages (from
../shared/fixtures), given as JSONL files, trained and measured by the CLI."""

import gzip
import json

import pytest
import yaml

from flows.cli import main
from pipelines.sources import READERS, read_file

pytestmark = pytest.mark.integration


def test_wikipedia_vs_c4_held_out_auc(shared_fixtures, tmp_path, capsys):
    (dump,) = (shared_fixtures / "wikipedia").glob("*.bz2")
    articles = [
        r for r in read_file(str(dump), "wiki", READERS["mediawiki"]) if isinstance(r, dict)
    ]
    with gzip.open(shared_fixtures / "c4" / "olmo-c4-sample.00000-of-00001.json.gz", "rt") as fh:
        pages = [json.loads(line)["text"] for line in fh]
    assert len(articles) > 100 and len(pages) == 1000
    positives, negatives = tmp_path / "wikipedia.jsonl", tmp_path / "c4.jsonl"
    positives.write_text(
        "".join(json.dumps({"id": a["id"], "text": a["text"]}) + "\n" for a in articles)
    )
    negatives.write_text("".join(json.dumps({"text": t}) + "\n" for t in pages))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "real",
                "workdir": str(tmp_path / "work"),
                "sources": {"web": {"format": "jsonl", "inputs": [str(negatives)], "weight": 1}},
                "quality_classifier": {
                    "positives": [str(positives)],
                    "negatives": [str(negatives)],
                },
                "mixture": {"total_tokens": 1000},
            }
        )
    )
    assert main(["train-quality-classifier", str(recipe)]) == 0
    out = capsys.readouterr().out
    print(out)
    assert f"{len(articles)} positive and 1000 negative documents" in out
    metrics = json.loads(
        (tmp_path / "work" / "train-classifier" / "_all" / "model_card.json").read_text()
    )["metrics"]
    assert metrics["auc"] >= 0.95
    assert metrics["precision"] >= 0.6 and metrics["recall"] >= 0.6
