"""The whole recipe: the data side (pipelines.recipe), the `train` section (the trainer's
settings) and the `evaluation` section (the tasks the eval deployment scores each trained
checkpoint on), composed here so that neither of those packages imports the other."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from pipelines import recipe as data_recipe
from trainer.config import TrainSettings
from trainer.tasks import EvalSettings


class Recipe(data_recipe.Recipe):
    train: TrainSettings = Field(default_factory=TrainSettings)
    evaluation: EvalSettings | None = None  # none: no eval deployment


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read and validate a whole recipe, as pipelines.recipe.load_recipe does the data side;
    a relative train.checkpoint_dir, and the evaluation's task files and checkpoint, are
    resolved against the recipe file's folder too."""
    recipe = data_recipe.load_recipe(path, schema=Recipe)
    base = Path(path).resolve().parent
    if recipe.train.checkpoint_dir is not None:
        recipe.train.checkpoint_dir = data_recipe.resolve_path(recipe.train.checkpoint_dir, base)
    evaluation = recipe.evaluation
    if evaluation is not None:
        for files in (evaluation.tasks, evaluation.fewshot):
            files.update({name: data_recipe.resolve_path(p, base) for name, p in files.items()})
        if evaluation.checkpoint is not None:
            evaluation.checkpoint = data_recipe.resolve_path(evaluation.checkpoint, base)
    _give_filesystems_the_options(recipe)
    return recipe


def _give_filesystems_the_options(recipe: Recipe) -> None:
    """Beam's filesystems take their settings from the pipeline options (S3's refuses to work
    without them), and the driver lists inputs and writes the workdir before any pipeline
    exists: give them the recipe's runner options when it names an object store."""
    locations = [recipe.workdir, *(p for s in recipe.sources.values() for p in s.inputs)]
    if not any(data_recipe.is_uri(p) and not p.startswith(_NOT_BEAM) for p in locations):
        return  # local paths and URLs only: nothing to set up, and no Beam import
    from apache_beam.io.filesystems import FileSystems

    from pipelines.beam_io import pipeline_options

    FileSystems.set_options(pipeline_options(recipe))


_NOT_BEAM = ("http://", "https://", "file://")
