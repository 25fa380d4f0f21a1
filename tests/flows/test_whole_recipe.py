"""flows/recipe.py: the whole recipe, the data side of pipelines.recipe and the `train` section."""

import ast
from pathlib import Path

import pytest

from flows.recipe import load_recipe
from pipelines import recipe as data_recipe
from pipelines.errors import RecipeError
from tests.conftest import ROOT
from tests.pipelines.test_recipe import MINIMAL


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_train_takes_the_paper_defaults(tmp_path):
    recipe = load_recipe(_write(tmp_path, MINIMAL))
    assert recipe.train.beta2 == 0.95
    assert recipe.train.checkpoint_dir is None


def test_a_relative_checkpoint_dir_resolves_against_the_recipe_folder(tmp_path):
    recipe = load_recipe(_write(tmp_path, MINIMAL + "train: {checkpoint_dir: runs/a}\n"))
    assert recipe.train.checkpoint_dir == str(tmp_path / "runs" / "a")
    assert recipe.workdir == str(tmp_path / "w")  # and the data side's paths as before


def test_typo_in_a_train_key_is_an_error(tmp_path):
    with pytest.raises(RecipeError, match=r"train.max_step: unknown key"):
        load_recipe(_write(tmp_path, MINIMAL + "train: {max_step: 3}\n"))


def test_the_data_side_loader_names_a_train_section_in_one_line(tmp_path):
    path = _write(tmp_path, MINIMAL + "train: {max_steps: 3}\n")
    with pytest.raises(RecipeError) as err:
        data_recipe.load_recipe(path)
    assert str(err.value) == f"{path}: train: unknown key"


def test_the_train_section_is_part_of_the_recipe_hash(tmp_path):
    # sha256() goes into mixture.json: a whole recipe hashes every section, train included.
    plain = load_recipe(_write(tmp_path, MINIMAL))
    data_side = data_recipe.load_recipe(_write(tmp_path, MINIMAL))
    assert plain.sha256() != data_side.sha256()
    trained = load_recipe(_write(tmp_path, MINIMAL + "train: {max_steps: 3}\n"))
    assert trained.sha256() != plain.sha256()


def test_pipelines_imports_neither_the_trainer_nor_the_flows():
    for path in (ROOT / "pipelines").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in ("trainer", "flows"), f"{path}: {name}"
