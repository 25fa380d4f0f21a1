"""Model files the filters load (language ID, KenLM, SentencePiece, the reference classifier):
found on the driver, fetched once when they are URLs, copied to local disk on each worker."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from apache_beam.io.filesystems import FileSystems

from filters.perplexity import PerplexityConfig
from filters.quality_classifier import ReferenceClassifier, ReferenceClassifierConfig
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


def local_configs(configs: list[Any]) -> list[Any]:
    """The filters with their model files copied to this worker's disk."""
    local = []
    for config in configs:
        if isinstance(config, PerplexityConfig):
            config = config.model_copy(
                update={
                    "model": local_copy(config.model),
                    "tokenizer": local_copy(config.tokenizer),
                }
            )
        local.append(config)
    return local


@dataclass(frozen=True)
class ClassifierFiles:
    """The reference classifier's files: one model, or the cross-fitted pair with the ids
    each was trained on."""

    models: list[str]
    trained_on: str | None = None
    max_chars: int = 10_000

    def load(self) -> ReferenceClassifier:
        trained_on = None
        if self.trained_on is not None:
            halves = json.loads(read_file_bytes(self.trained_on))
            trained_on = [set(halves[str(k)]) for k in range(len(self.models))]
        return ReferenceClassifier([local_copy(m) for m in self.models], trained_on, self.max_chars)


def resolve_filters(ctx: StageContext, source: str) -> tuple[list[Any], ClassifierFiles | None]:
    """A source's filters with every file they name found (URLs fetched into the cache), and
    the reference classifier's files when the source has one."""
    configs, classifier = [], None
    for i, f in enumerate(ctx.recipe.sources[source].filters):
        key = f"sources.{source}.filters[{i}]"
        if isinstance(f, PerplexityConfig):
            f = f.model_copy(
                update={
                    "model": model_location(ctx, f.model, f"{key}.model"),
                    "tokenizer": model_location(ctx, f.tokenizer, f"{key}.tokenizer"),
                }
            )
        elif isinstance(f, ReferenceClassifierConfig):
            if f.model:
                classifier = ClassifierFiles([model_location(ctx, f.model, f"{key}.model")])
            else:
                classifier = trained_classifier(ctx)
        elif getattr(f, "bad_words", None):
            f = f.model_copy(
                update={"bad_words": model_location(ctx, f.bad_words, f"{key}.bad_words")}
            )
        configs.append(f)
    return configs, classifier


def trained_classifier(ctx: StageContext) -> ClassifierFiles:
    """The cross-fitted pair that train-classifier wrote for this recipe."""
    config = ctx.recipe.quality_classifier
    assert config is not None, "the recipe validator requires quality_classifier here"
    return ClassifierFiles(
        [ctx.store.path("train-classifier", ALL_SOURCES, model_file(k)) for k in (0, 1)],
        ctx.store.path("train-classifier", ALL_SOURCES, TRAINED_ON),
        config.max_chars,
    )
