"""Real LaTeX, read as arXiv dumps are: 153 documents of Debian's TeX Live documentation
packages (journal classes' sample papers and templates, package manuals, and every document
that once hung or blew up the cleaner; tests/data/latex/documents.txt lists them), and the
real arXiv submissions of ../shared/fixtures."""

from __future__ import annotations

import hashlib

import pytest

from pipelines.sources import READERS, Rejected, read_file
from tests.data.latex.corpus import source_sizes, timed_records


def test_every_real_document_finishes_quickly_with_sensible_text():
    sizes = source_sizes()
    seconds, docs = [], []
    for took, record in timed_records():
        seconds.append(took)
        assert not isinstance(record, Rejected), (record.reason, record.detail)
        docs.append(record)
    assert len(docs) == len(sizes) == 153
    assert max(seconds) < 5  # the slowest took about 1 s; some used to run for hours
    for doc in docs:
        assert len(doc["text"]) <= 3 * sizes[doc["origin"]], doc["origin"]
    prose = [d["text"] for d in docs if len(d["text"]) >= 200]
    assert len(prose) >= 0.9 * len(docs)
    for text in prose:  # text, not runaway macro bodies or markup only
        assert sum(c.isalpha() for c in text) / len(text) > 0.4


@pytest.mark.parametrize(
    "name, sha256, chars",
    [
        ("1602.00123.tar", "3b0d1bbd91e9034a", 25480),
        ("1801.03879-1.tar.gz", "bb0116cc4ac33333", 51198),
        ("hepth_desitterv3.tex.gz", "849a7370f5549672", 28194),
    ],
)
def test_arxiv_fixtures_give_the_same_text_as_before_the_bounds(
    shared_fixtures, name, sha256, chars
):
    (doc,) = [
        r
        for r in read_file(str(shared_fixtures / "arxiv" / name), "arxiv", READERS["arxiv"])
        if isinstance(r, dict)
    ]
    assert len(doc["text"]) == chars
    assert hashlib.sha256(doc["text"].encode()).hexdigest()[:16] == sha256
