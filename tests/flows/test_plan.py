import re
from typing import get_args

import pytest

from flows.cli import main
from flows.plan import (
    estimate,
    kept_fractions,
    paper_sizes,
    parse_amount,
    parse_size,
    text_sizes,
)
from flows.recipe import load_recipe
from pipelines import rates
from pipelines.recipe import SourceFormat
from pipelines.registry import STAGES
from pipelines.store import StageStore
from tests.conftest import RECIPES, write_recipe

# Table 1 of the paper: tokens per source as sampling proportion x 1.4T / epochs.
PAPER_TOKENS = [
    "commoncrawl=852.7B",
    "c4=198.1B",
    "github=98.4B",
    "wikipedia=25.7B",
    "books=28.3B",
    "arxiv=33.0B",
    "stackexchange=27.2B",
]
PAPER_EPOCHS = {
    "commoncrawl": "1.10",
    "c4": "1.06",
    "github": "0.64",
    "wikipedia": "2.45",
    "books": "2.23",
    "arxiv": "1.06",
    "stackexchange": "1.03",
}


def test_plan_reproduces_table_1(capsys):
    recipe = str(RECIPES / "llama-paper.yaml")
    assert main(["plan", recipe, "--total-tokens", "1.4T", "--tokens", *PAPER_TOKENS]) == 0
    out = capsys.readouterr().out
    for source, epochs in PAPER_EPOCHS.items():
        row = next(line for line in out.splitlines() if f" {source} " in line)
        assert re.search(rf"│\s+{re.escape(epochs)} │$", row), row


def test_plan_needs_counts_it_cannot_find(capsys):
    recipe = str(RECIPES / "llama.yaml")  # a gs:// workdir, nothing built
    assert main(["plan", recipe, "--tokens", "c4=1B"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llama-recipe: error:") and "--tokens" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "text, value",
    [("1.4T", 1_400_000_000_000), ("852.7B", 852_700_000_000), ("300M", 300_000_000), ("12", 12)],
)
def test_token_amounts(text, value):
    assert parse_amount(text) == value


# -- core-hours by stage ------------------------------------------------------------------
# Rates chosen so that every row is easy to work out by hand: 3600 s/GB is 1 core-hour a GB.
HAND_RATES = (
    rates.Rate("extract", 3600, "wet", measured=True),
    rates.Rate("extract", 900, "c4", measured=True),
    rates.Rate("langid", 1800, measured=True),
    rates.Rate("train-classifier", 360),
    rates.Rate("quality", 7200, measured=True),
    rates.Rate("dedup", 720),
    rates.Rate("train-tokenizer", 360),
    rates.Rate("tokenize", 1800),
    rates.Rate("mix", 360),
)


@pytest.fixture
def no_build_recipe(tmp_path):
    """The sample recipe over an empty workdir: nothing built, every stage reads all text."""
    return write_recipe(tmp_path)


def _hours_by_stage(costs):
    hours = {}
    for cost in costs:
        hours[cost.stage] = hours.get(cost.stage, 0) + cost.core_hours
    return {stage: round(value, 6) for stage, value in hours.items()}


def test_core_hours_from_text_sizes(no_build_recipe, monkeypatch, capsys):
    monkeypatch.setattr(rates, "RATES", HAND_RATES)
    recipe = load_recipe(no_build_recipe)
    sizes = text_sizes(recipe, ["commoncrawl=2G", "c4=4GB"])
    assert sizes == {"commoncrawl": 2 * 10**9, "c4": 4 * 10**9}
    # commoncrawl 2 GB (wet), c4 4 GB; train-classifier learns from commoncrawl (and wikipedia,
    # not sized); the all-source stages read the 6 GB together.
    assert _hours_by_stage(estimate(recipe, sizes, kept={})) == {
        "extract": 2 * 3600 / 3600 + 4 * 900 / 3600,  # 2 + 1
        "langid": 6 * 1800 / 3600,  # 3
        "train-classifier": 2 * 360 / 3600,  # 0.2
        "quality": 6 * 7200 / 3600,  # 12
        "dedup": 6 * 720 / 3600,  # 1.2
        "train-tokenizer": 6 * 360 / 3600,  # 0.6
        "tokenize": 6 * 1800 / 3600,  # 3
        "mix": 6 * 360 / 3600,  # 0.6
    }
    assert main(["plan", str(no_build_recipe), "--text", "commoncrawl=2G", "c4=4GB"]) == 0
    out = capsys.readouterr().out
    assert "No epochs table" in out  # nothing built: the estimate alone
    assert re.search(r"│ total\s.*│\s+23\.60 │$", out, re.MULTILINE), out
    assert re.search(r"│ dedup\s.*│\s+1\.20 │$", out, re.MULTILINE)
    assert re.search(r"│\s+│ c4\s+│\s+4\.0 │\s+720\* │\s+0\.80 │$", out, re.MULTILINE)
    assert "one core of" in out and "not a promise" in out
    assert "Not counted (no size): wikipedia, books, arxiv, stackexchange." in out


def test_core_hours_follow_what_the_build_kept(no_build_recipe, monkeypatch):
    monkeypatch.setattr(rates, "RATES", HAND_RATES)
    recipe = load_recipe(no_build_recipe)
    store = StageStore(recipe.workdir)
    # extract made 1000 characters; langid kept all, quality half, dedup a quarter.
    for stage, chars in (("extract", 1000), ("langid", 1000), ("quality", 500), ("dedup", 250)):
        store.write_manifest(stage, "c4", {"kept_text_chars": chars})
    kept = kept_fractions(recipe)
    assert kept["c4"] == {
        "extract": 1.0,
        "langid": 1.0,
        "quality": 0.5,
        "dedup": 0.25,
        "decontaminate": 0.25,  # not built: what dedup kept
        "tokenize": 0.25,  # counts tokens, not text: what dedup kept
    }
    costs = estimate(recipe, {"c4": 4 * 10**9}, kept)
    read = {cost.stage: cost.text_bytes / 10**9 for cost in costs}
    assert read == {
        "extract": 4,
        "langid": 4,
        "quality": 4,  # what langid kept
        "dedup": 2,  # what quality kept
        "train-tokenizer": 1,
        "tokenize": 1,
        "mix": 1,
    }


def test_paper_sizes_for_the_sample_recipe(no_build_recipe, capsys):
    sizes, lines = paper_sizes(load_recipe(RECIPES / "sample.yaml"))
    assert sizes == {
        "commoncrawl": 3_300_000_000_000,  # format wet
        "c4": 783_000_000_000,
        "wikipedia": 83_000_000_000,  # format mediawiki
        "books": 85_000_000_000,  # format gutenberg
        "arxiv": 92_000_000_000,
        "stackexchange": 78_000_000_000,
    }
    assert ("wikipedia", "wikipedia = Wikipedia, 83 GB (format mediawiki)") in lines
    assert lines[-1] == ("", "not in this recipe: GitHub")

    assert main(["plan", str(no_build_recipe), "--paper", "--text", "c4=1T"]) == 0
    out = capsys.readouterr().out
    assert "commoncrawl = CommonCrawl, 3.3 TB (format wet)" in out
    assert "c4 = C4, 783 GB (format c4), overridden by --text" in out
    assert re.search(r"│\s+│ c4\s+│\s+1,000\.0 │", out)
    assert re.search(r"│ train-classifier │ commoncrawl, wikipedia │\s+3,383\.0 │", out)
    assert "lower bound" in out and "Not counted" not in out


def test_paper_sizes_by_name_for_jsonl(tmp_path):
    sources = {
        "github": {"format": "jsonl", "inputs": ["code/*.jsonl"], "weight": 1},
        "web": {"format": "warc", "inputs": ["a/*.warc.gz"], "weight": 1},
        "more_web": {"format": "wet", "inputs": ["b/*.wet.gz"], "weight": 1},
    }
    recipe = load_recipe(write_recipe(tmp_path, sources=sources, quality_classifier=None))
    sizes, lines = paper_sizes(recipe)
    assert sizes == {"github": 328_000_000_000, "web": 3_300_000_000_000}
    assert ("github", "github = GitHub, 328 GB (name)") in lines
    assert ("more_web", "more_web: CommonCrawl went to web, give --text") in lines


def test_plan_without_sizes_hints_at_the_estimate(capsys):
    recipe = str(RECIPES / "llama-paper.yaml")
    assert main(["plan", recipe, "--total-tokens", "1.4T", "--tokens", *PAPER_TOKENS]) == 0
    out = capsys.readouterr().out
    assert "Core-hours by stage: add --paper" in out and "--text SOURCE=SIZE" in out
    assert "(an estimate)" not in out  # the epochs table only


@pytest.mark.parametrize(
    "item",
    ["c4=lots", "c4=", "c4", "nosuch=1T", "c4=3.3X", "c4=-1G", "c4=1.5 PB"],
)
def test_bad_text_size_is_one_line(no_build_recipe, capsys, item):
    assert main(["plan", str(no_build_recipe), "--text", item]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llama-recipe: error: --text") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "text, value",
    [
        ("3.3T", 3_300_000_000_000),
        ("783G", 783_000_000_000),
        ("83GB", 83_000_000_000),
        ("500M", 500_000_000),
        ("1.5 tb", 1_500_000_000_000),
        ("12", 12),
    ],
)
def test_text_sizes(text, value):
    assert parse_size(text) == value


def test_every_stage_has_a_rate_for_every_format():
    for source_format in get_args(SourceFormat):
        for stage in STAGES:
            rate = rates.rate_for(stage, source_format)
            assert rate.seconds_per_gb > 0
    assert rates.rate_for("extract", "warc").measured
    assert not rates.rate_for("extract", "jsonl").measured  # a placeholder
