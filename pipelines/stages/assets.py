"""Model files the filters load (language ID, KenLM, SentencePiece, the reference classifier):
found on the driver, fetched once when they are URLs, copied to local disk on each worker."""

from __future__ import annotations

import os
import tempfile

from apache_beam.io.filesystems import FileSystems

from pipelines.errors import UserError
from pipelines.fetch import fetch, is_remote_url
from pipelines.recipe import is_uri
from pipelines.stages.base import StageContext


def model_location(ctx: StageContext, location: str, key: str) -> str:
    """Where workers read a configured model: http(s) URLs are downloaded into the workdir's
    fetch cache first; a missing file is a one-line error naming the recipe key."""
    if is_remote_url(location):
        from pipelines.stages.extract import fetch_cache

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
