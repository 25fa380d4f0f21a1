import re
from pathlib import Path

import pytest
import yaml

from flows.recipe import load_recipe as load_whole_recipe  # recipes with a `train` section
from pipelines.errors import RecipeError
from pipelines.recipe import load_recipe
from tests.conftest import RECIPES


@pytest.mark.parametrize("name", ["sample", "llama", "llama-paper"])
def test_shipped_recipes_validate(name):
    recipe = load_whole_recipe(RECIPES / f"{name}.yaml")
    assert abs(sum(recipe.weights().values()) - 1) < 1e-12


def test_sample_recipe_has_six_sources_at_the_paper_mixture():
    recipe = load_whole_recipe(RECIPES / "sample.yaml")
    assert list(recipe.sources) == [
        "commoncrawl",
        "c4",
        "wikipedia",
        "books",
        "arxiv",
        "stackexchange",
    ]
    weights = recipe.weights()
    # 67 / 15 / 4.5 / 4.5 / 2.5 / 2 renormalized over 95.5
    assert weights["commoncrawl"] == pytest.approx(67 / 95.5)
    assert weights["stackexchange"] == pytest.approx(2 / 95.5)


def test_paper_recipe_is_table_1():
    weights = load_whole_recipe(RECIPES / "llama-paper.yaml").weights()
    assert weights == pytest.approx(
        {
            "commoncrawl": 0.67,
            "c4": 0.15,
            "github": 0.045,
            "wikipedia": 0.045,
            "books": 0.045,
            "arxiv": 0.025,
            "stackexchange": 0.02,
        }
    )


def test_relative_paths_resolve_against_the_recipe_folder():
    recipe = load_whole_recipe(RECIPES / "sample.yaml")
    assert recipe.workdir == str((RECIPES / ".." / "build" / "sample").resolve())
    assert recipe.sources["c4"].inputs == [str(RECIPES.parent / "samples/c4/*.json.gz")]
    remote = load_whole_recipe(RECIPES / "llama.yaml")
    assert remote.workdir.startswith("gs://")
    assert remote.sources["commoncrawl"].crawl.id == "CC-MAIN-2020-05"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


MINIMAL = """
name: t
workdir: w
sources:
  c4: {format: c4, inputs: [x.json.gz], weight: 1}
mixture: {total_tokens: 1000}
"""


def test_minimal_recipe_takes_paper_defaults(tmp_path):
    recipe = load_recipe(_write(tmp_path, MINIMAL))
    assert recipe.tokenizer.vocab_size == 32000
    assert recipe.mixture.seq_len == 2048
    assert recipe.sources["c4"].min_language_score == 0.5


def test_typo_in_a_key_names_the_key_and_the_file(tmp_path):
    path = _write(tmp_path, MINIMAL.replace("weight: 1", "wieght: 1"))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    message = str(err.value)
    assert str(path) in message
    assert "sources.c4.wieght: unknown key" in message
    assert "sources.c4.weight: required key is missing" in message
    assert "\n" not in message


def test_unknown_format_is_named(tmp_path):
    with pytest.raises(RecipeError, match=r"sources.c4.format: Input should be 'wet'"):
        load_recipe(_write(tmp_path, MINIMAL.replace("format: c4", "format: c5")))


def test_missing_recipe_and_bad_yaml(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(RecipeError, match="line 3 not valid YAML"):
        load_recipe(_write(tmp_path, "name: x\nsources: [a, b\n"))


def test_paper_recipes_filter_as_the_paper_did():
    from filters.perplexity import PerplexityConfig
    from filters.quality_classifier import ReferenceClassifierConfig

    for name in ("llama", "llama-paper"):
        recipe = load_whole_recipe(RECIPES / f"{name}.yaml")
        crawl = recipe.sources["commoncrawl"].filters
        assert [type(f) for f in crawl] == [PerplexityConfig, ReferenceClassifierConfig]
        assert crawl[0].keep == ["head", "middle"] and crawl[0].percentiles == (30, 60)
        assert [f.name for f in recipe.sources["c4"].filters] == ["c4"]
        for other in ("wikipedia", "books", "arxiv", "stackexchange"):
            assert recipe.sources[other].filters == []
        assert recipe.classifier_sources() == ["wikipedia", "commoncrawl"]
        assert len(recipe.sources["wikipedia"].languages) == 20


def _with_filters(tmp_path, filters, **extra):
    path = tmp_path / "r.yaml"
    source = {"format": "jsonl", "inputs": ["x.jsonl"], "weight": 1, "filters": filters}
    path.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "workdir": "w",
                "sources": {"web": source},
                "mixture": {"total_tokens": 1000},
                **extra,
            }  # fmt: skip
        )
    )
    return path


def test_filters_by_name_or_with_parameters(tmp_path):
    recipe = load_recipe(
        _with_filters(
            tmp_path,
            ["gopher_quality", {"name": "gopher_repetition"}, {"name": "c4", "min_sentences": 3}],
        )
    )
    quality, repetition, c4 = recipe.sources["web"].filters
    assert quality.min_words == 50 and quality.stop_words[:2] == ["the", "be"]
    assert repetition.max_duplicate_ngram_char_fraction[5] == 0.15
    assert c4.min_sentences == 3 and c4.min_words_per_line == 3


@pytest.mark.parametrize(
    "filters, needle",
    [
        (["gopher"], "unknown filter 'gopher'"),
        ([{"name": "c4", "min_sentence": 3}], "filters.0.c4.min_sentence: unknown key"),
        ([{"name": "perplexity", "model": "m.arpa"}], "tokenizer: required key is missing"),
        ([{"name": "reference_classifier"}], "reference_classifier has no `model`"),
    ],
)
def test_filter_mistakes_are_named(tmp_path, filters, needle):
    with pytest.raises(RecipeError, match=re.escape(needle)):
        load_recipe(_with_filters(tmp_path, filters))


def test_classifier_data_must_be_sources_or_files(tmp_path):
    path = _with_filters(
        tmp_path,
        ["reference_classifier"],
        quality_classifier={"positives": ["wikipedia"], "negatives": ["web"]},
    )
    with pytest.raises(RecipeError, match="'wikipedia' is neither a source"):
        load_recipe(path)
    path = _with_filters(
        tmp_path,
        ["reference_classifier"],
        quality_classifier={"positives": ["refs/*.jsonl"], "negatives": ["web"]},
    )
    recipe = load_recipe(path)
    assert recipe.quality_classifier.positives == [str(tmp_path / "refs/*.jsonl")]
    assert recipe.classifier_needed() and recipe.classifier_sources() == ["web"]


def test_dedup_settings_per_source_and_groups(tmp_path):
    recipe = load_whole_recipe(RECIPES / "sample.yaml")
    assert recipe.line_dedup("commoncrawl") and not recipe.line_dedup("c4")
    assert recipe.dedup_threshold(["books"]) == 0.9  # the paper's 90% overlap for books
    assert recipe.dedup_threshold(["c4"]) == 0.8
    assert recipe.dedup_group("c4") == ["c4"]
    path = _with_filters(tmp_path, [], dedup={"cross_source": [["web", "nope"]]})
    with pytest.raises(RecipeError, match="dedup.cross_source: no source 'nope'"):
        load_recipe(path)


def test_orchestration_defaults_and_settings(tmp_path):
    recipe = load_recipe(_write(tmp_path, MINIMAL))
    assert recipe.orchestration.retries == {"extract": 2}
    assert recipe.orchestration.concurrency == {"dedup": 1, "train-tokenizer": 1}
    assert recipe.orchestration.timeout_s == {}
    text = MINIMAL + (
        "orchestration:\n"
        "  retries: {extract: 4, dedup: 1}\n"
        "  retry_delay_s: 30\n"
        "  timeout_s: {dedup: 7200}\n"
        "  concurrency: {tokenize: 2}\n"
    )
    recipe = load_recipe(_write(tmp_path, text))
    assert recipe.orchestration.retries == {"extract": 4, "dedup": 1}
    assert recipe.orchestration.timeout_s == {"dedup": 7200}
    assert recipe.orchestration.concurrency == {"tokenize": 2}


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ("retries: {dedupe: 1}", "orchestration.retries.dedupe"),
        ("retries: {dedup: -1}", "orchestration.retries: Value error, dedup: must be 0 or more"),
        ("timeout_s: {mix: 0}", "orchestration.timeout_s: Value error, mix: must be a positive"),
        ("concurrency: {dedup: 0}", "orchestration.concurrency: Value error, dedup: must be 1"),
        ("retry: 3", "orchestration.retry: unknown key"),
    ],
)
def test_orchestration_mistakes_are_named(tmp_path, section, needle):
    with pytest.raises(RecipeError) as err:
        load_recipe(_write(tmp_path, MINIMAL + f"orchestration:\n  {section}\n"))
    assert needle in str(err.value)


def test_stage_names_in_recipes_are_the_stages():
    import typing

    from pipelines.registry import STAGES, StageName

    assert typing.get_args(StageName) == STAGES


def test_recipe_name_is_usable_in_prefect_names(tmp_path):
    with pytest.raises(RecipeError, match=r"name: Value error, 'My Build': use lowercase"):
        load_recipe(_write(tmp_path, MINIMAL.replace("name: t", "name: My Build")))


@pytest.mark.parametrize(
    "before, after, where",
    [
        ("weight: 1", "weight: .inf", "sources.c4.weight"),
        ("weight: 1", "weight: .nan", "sources.c4.weight"),
        ("total_tokens: 1000", "total_tokens: -.inf", "mixture.total_tokens"),
        ("total_tokens: 1000}", "total_tokens: 1000}\ntrain: {lr: .nan}", "train.lr"),
        ("total_tokens: 1000}", "total_tokens: 1000}\nrunner: {options: {x: [1, .inf]}}", ""),
    ],
)
def test_non_finite_numbers_are_refused_in_every_field(tmp_path, before, after, where):
    path = _write(tmp_path, MINIMAL.replace(before, after))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert "must be a finite number" in str(err.value)
    assert (where or "runner.options.x.1") in str(err.value)
