"""The whole recipe: the data side (pipelines.recipe) and the `train` section (the
trainer's settings), composed here so that neither of those packages imports the other."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from pipelines import recipe as data_recipe
from trainer.config import TrainSettings


class Recipe(data_recipe.Recipe):
    train: TrainSettings = Field(default_factory=TrainSettings)


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read and validate a whole recipe, as pipelines.recipe.load_recipe does the data side;
    a relative train.checkpoint_dir is resolved against the recipe file's folder too."""
    recipe = data_recipe.load_recipe(path, schema=Recipe)
    if recipe.train.checkpoint_dir is not None:
        base = Path(path).resolve().parent
        recipe.train.checkpoint_dir = data_recipe.resolve_path(recipe.train.checkpoint_dir, base)
    return recipe
