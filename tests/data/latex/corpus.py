"""Reading texlive-papers.tar as the arXiv reader does, timing each document."""

from __future__ import annotations

import gzip
import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "texlive-papers.tar"


def source_sizes(path: Path = CORPUS) -> dict[str, int]:
    """Characters of .tex source per paper, by the origin the reader gives (`arxiv:<id>`)."""
    sizes = {}
    with tarfile.open(path) as bulk:
        for member in bulk:
            inner = gzip.decompress(bulk.extractfile(member).read())
            with tarfile.open(fileobj=io.BytesIO(inner)) as paper:
                sizes[f"arxiv:{member.name.rsplit('/', 1)[1][:-3]}"] = sum(
                    len(paper.extractfile(m).read().decode("utf-8", "replace"))
                    for m in paper
                    if m.isfile()
                )
    return sizes


def timed_records(path: Path = CORPUS) -> Iterator[tuple[float, object]]:
    """(seconds it took, record) for every record the arXiv reader gives."""
    from pipelines.recipe import ExtractConfig
    from pipelines.sources import READERS, read_file

    records = read_file(str(path), "arxiv", READERS["arxiv"], ExtractConfig())
    while True:
        started = time.perf_counter()
        record = next(records, None)
        if record is None:
            return
        yield time.perf_counter() - started, record
