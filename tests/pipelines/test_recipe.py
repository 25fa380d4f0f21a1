from pathlib import Path

import pytest

from pipelines.errors import RecipeError
from pipelines.recipe import load_recipe
from tests.conftest import RECIPES


@pytest.mark.parametrize("name", ["sample", "llama", "llama-paper"])
def test_shipped_recipes_validate(name):
    recipe = load_recipe(RECIPES / f"{name}.yaml")
    assert abs(sum(recipe.weights().values()) - 1) < 1e-12


def test_sample_recipe_has_six_sources_at_the_paper_mixture():
    recipe = load_recipe(RECIPES / "sample.yaml")
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
    weights = load_recipe(RECIPES / "llama-paper.yaml").weights()
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
    recipe = load_recipe(RECIPES / "sample.yaml")
    assert recipe.workdir == str((RECIPES / ".." / "build" / "sample").resolve())
    assert recipe.sources["c4"].inputs == [str(RECIPES.parent / "samples/c4/*.json.gz")]
    remote = load_recipe(RECIPES / "llama.yaml")
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
    assert recipe.train.beta2 == 0.95


def test_typo_in_a_key_names_the_key_and_the_file(tmp_path):
    path = _write(tmp_path, MINIMAL.replace("weight: 1", "wieght: 1"))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    message = str(err.value)
    assert str(path) in message
    assert "sources.c4.wieght: unknown key" in message
    assert "sources.c4.weight: required key is missing" in message
    assert "\n" not in message


def test_typo_in_a_train_key_is_an_error(tmp_path):
    with pytest.raises(RecipeError, match=r"train.max_step: unknown key"):
        load_recipe(_write(tmp_path, MINIMAL + "train: {max_step: 3}\n"))


def test_unknown_format_is_named(tmp_path):
    with pytest.raises(RecipeError, match=r"sources.c4.format: Input should be 'wet'"):
        load_recipe(_write(tmp_path, MINIMAL.replace("format: c4", "format: c5")))


def test_missing_recipe_and_bad_yaml(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(RecipeError, match="line 3 not valid YAML"):
        load_recipe(_write(tmp_path, "name: x\nsources: [a, b\n"))
