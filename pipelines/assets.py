"""Model files the filters load (language ID, KenLM, SentencePiece, the reference classifier):
found on the driver, fetched once when they are URLs, copied to local disk on each worker."""

from __future__ import annotations

import os
import tempfile

from apache_beam.io.filesystems import FileSystems

from filters.base import FilterConfig
from filters.quality_classifier import ClassifierFiles
from pipelines.errors import UserError
from pipelines.fetch import fetch, is_remote_url
from pipelines.recipe import is_uri
from pipelines.stage import StageContext
from pipelines.store import ALL_SOURCES

TRAINED_ON = "trained_on.json"  # train-classifier: the ids each of its two models trained on


def model_file(half: int) -> str:
    """train-classifier's model trained on one half of its sample."""
    return f"model-{half}.bin"


def fetch_cache(ctx: StageContext) -> str:
    """Where downloads are cached: `<workdir>/fetch`, shared by every source and rerun."""
    return FileSystems.join(ctx.store.workdir, "fetch")


def model_location(ctx: StageContext, location: str, key: str) -> str:
    """Where workers read a configured model: http(s) URLs are downloaded into the workdir's
    fetch cache first; a missing file is a one-line error naming the recipe key."""
    if is_remote_url(location):
        return fetch(location, fetch_cache(ctx), ctx.recipe.fetch)
    exists = FileSystems.exists(location) if is_uri(location) else os.path.isfile(location)
    if not exists:
        raise UserError(f"{location}: file not found ({key})")
    return location


def local_copy(path: str) -> str:
    """A local file for libraries that only open local paths (fastText, KenLM, SentencePiece)."""
    if "://" not in path or path.startswith("file://"):
        return path.removeprefix("file://")
    suffix = os.path.basename(path)
    fd, local = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as out, FileSystems.open(path) as src:
        while block := src.read(1 << 22):
            out.write(block)
    return local


def read_file_bytes(path: str) -> bytes:
    """A whole file through Beam's filesystems (local paths and URIs alike)."""
    with FileSystems.open(path) as fh:
        return fh.read()


def resolve_filters(
    ctx: StageContext, source: str
) -> tuple[list[FilterConfig], ClassifierFiles | None]:
    """A source's filters with every file they name found (URLs fetched into the cache), and
    the files of the classifier train-classifier trained when a filter uses it."""
    configs = []
    for i, f in enumerate(ctx.recipe.sources[source].filters):
        key = f"sources.{source}.filters[{i}]"
        found = {
            name: model_location(ctx, getattr(f, name), f"{key}.{name}")
            for name in f.files
            if getattr(f, name)
        }
        configs.append(f.model_copy(update=found))
    trained = trained_classifier(ctx) if ctx.recipe.uses_trained_classifier(source) else None
    return configs, trained


def trained_classifier(ctx: StageContext) -> ClassifierFiles:
    """The cross-fitted pair that train-classifier wrote for this recipe."""
    config = ctx.recipe.quality_classifier
    assert config is not None, "the recipe validator requires quality_classifier here"
    return ClassifierFiles(
        [ctx.store.path("train-classifier", ALL_SOURCES, model_file(k)) for k in (0, 1)],
        ctx.store.path("train-classifier", ALL_SOURCES, TRAINED_ON),
        config.max_chars,
    )
