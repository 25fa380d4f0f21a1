"""A Wikipedia dump read in two phases (scan the pages in order, render them anywhere) gives
exactly what reading it in one go gives: the same documents and the same rejections."""

import bz2
import io
import json
import pickle

import apache_beam as beam
import pytest

from pipelines.recipe import ExtractConfig, FetchConfig, SourceConfig
from pipelines.sources import READERS, SPLIT_READERS, Raw, Rejected, read_file
from pipelines.sources.base import ReadAhead, batched, register_split, render_batch
from pipelines.sources.mediawiki import WikiPage
from pipelines.stages.extract import RAW, REJECTS, RouteRecords, route


def _rows(outputs):
    """Kept and rejected rows of route() outputs, as sorted JSON; raw batches apart."""
    kept, rejected, raw = [], [], []
    for out in outputs:
        tag = getattr(out, "tag", None)
        value = out.value if tag else out
        if tag == RAW:
            raw.append(value)
        else:
            (rejected if tag == REJECTS else kept).append(json.dumps(value, sort_keys=True))
    return sorted(kept), sorted(rejected), raw


def _split_and_whole(path, limits):
    """What the extract stage makes of a file through the scan and the render of its pages,
    and what reading it in one go makes of it."""
    spec = SourceConfig(format="mediawiki", inputs=[str(path)], weight=1)
    scan = RouteRecords("wiki", spec, limits, FetchConfig(), "/tmp/unused", {})
    kept, rejected, batches = _rows(scan.process(str(path)))
    render = SPLIT_READERS["mediawiki"][1]
    for batch in batches:
        batch = pickle.loads(pickle.dumps(batch))  # as it travels between workers
        more_kept, more_rejected, _ = _rows(route(render_batch(render, batch, limits), limits))
        kept, rejected = sorted(kept + more_kept), sorted(rejected + more_rejected)
    whole = _rows(route(read_file(str(path), "wiki", READERS["mediawiki"], limits), limits))
    # On one worker of the embedded runner the stage reads the file in one pass instead.
    one_pass = RouteRecords("wiki", spec, limits, FetchConfig(), "/tmp/unused", {}, split=False)
    assert _rows(one_pass.process(str(path))) == (*whole[:2], [])
    return (kept, rejected), whole[:2], batches


def test_a_damaged_real_dump_reads_the_same_in_two_phases(shared_fixtures, tmp_path, monkeypatch):
    monkeypatch.setattr("pipelines.sources.base.RENDER_BATCH_RECORDS", 4)
    dump = next((shared_fixtures / "wikipedia").glob("*.bz2")).read_bytes()
    cut = tmp_path / "enwiki-cut-pages-articles.xml.bz2"
    cut.write_bytes(dump[:500_000])  # two bz2 blocks: ~80 pages, then the cut
    limits = ExtractConfig(max_document_bytes=50_000)  # and a page over the size limit
    split, whole, batches = _split_and_whole(cut, limits)
    assert split == whole
    kept, rejected = split
    reasons = sorted({json.loads(row)["reason"] for row in rejected})
    assert reasons == ["extract:damaged_file", "extract:redirect", "extract:too_large"]
    assert len(kept) >= 4 and len(batches) >= 2
    assert all(len(batch) <= 4 for batch in batches)


def _dump(*pages: str) -> bytes:
    head = "<mediawiki><siteinfo><dbname>xwiki</dbname></siteinfo>\n"
    return bz2.compress((head + "".join(pages) + "</mediawiki>\n").encode())


def _page(page_id: int, ns: int = 0, text: str = "Some '''words''' here.") -> str:
    return (
        f"<page><title>T{page_id}</title><ns>{ns}</ns><id>{page_id}</id>"
        f"<revision><timestamp>2020-01-01T00:00:00Z</timestamp><text>{text}</text>"
        "</revision></page>\n"
    )


@pytest.mark.parametrize(
    "dump",
    [
        _dump(_page(1), _page(2, text="#REDIRECT [[T1]]"), _page(3, text="")),
        _dump(_page(1, ns=1), _page(2, ns=10)),  # no article at all: no records in the file
        _dump(_page(1), "<page><title>broken</title><ns>0", _page(2)),  # a damaged page
        _dump(_page(1), _page(2, text="x" * 3000)),  # a page over the size limit
        _dump(_page(1))[:-20],  # cut short
    ],
    ids=["redirect-and-empty", "only-other-namespaces", "damaged-page", "too-large", "cut-short"],
)
def test_small_dumps_read_the_same_in_two_phases(tmp_path, dump):
    path = tmp_path / "xwiki-pages-articles.xml.bz2"
    path.write_bytes(dump)
    split, whole, _ = _split_and_whole(path, ExtractConfig(max_document_bytes=1000))
    assert split == whole and split != ([], [])


def _raw(name: str, size: int) -> Raw:
    return Raw({"origin": name}, size)


def test_raw_records_are_batched_by_count_and_size_and_the_rest_pass_straight_on():
    rejected = Rejected({"origin": "r"}, "extract:redirect")
    records = [_raw("a", 1), rejected, _raw("b", 1), _raw("c", 1), _raw("d", 8), _raw("e", 20)]
    out = list(batched(records, max_records=2, max_size=10))
    names = [[r.row["origin"] for r in x] if isinstance(x, list) else x.reason for x in out]
    # A record larger than the size limit goes alone.
    assert names == ["extract:redirect", ["a", "b"], ["c", "d"], ["e"]]


def test_a_page_that_fails_to_render_costs_that_page_only():
    def render(raw, limits):
        if raw.row["origin"] == "bad":
            raise RuntimeError("parser bug")
        return {**raw.row, "text": "fine"}

    out = list(render_batch(render, [_raw("good", 1), _raw("bad", 1)], ExtractConfig()))
    assert out[0] == {"origin": "good", "text": "fine"}
    assert (out[1].reason, out[1].detail) == ("extract:reader_error", "RuntimeError: parser bug")

    # Read in one pass (one worker of the embedded runner), the same page costs the same.
    def scan(path, source, fh, limits):
        yield from (_raw("bad", 1), _raw("good", 1))

    register_split("two-phase-test", render)(scan)
    try:
        out = list(READERS["two-phase-test"]("f", "src", io.BytesIO(), ExtractConfig()))
    finally:
        del READERS["two-phase-test"], SPLIT_READERS["two-phase-test"]
    assert (out[0].reason, out[0].detail) == ("extract:reader_error", "RuntimeError: parser bug")
    assert out[1] == {"origin": "good", "text": "fine"}


def test_a_batch_of_pages_survives_the_coder_between_workers():
    page = WikiPage({"id": "x", "origin": "xwiki:1"}, 5, "'''Words'''", ("file", "category"))
    coder = beam.coders.registry.get_coder(object)
    assert coder.decode(coder.encode([page, page])) == [page, page]


class _Damaged:
    """A stream that gives two chunks, then fails as a damaged bz2 stream does."""

    def __init__(self):
        self.chunks = [b"a" * 10, b"b" * 10]

    def read(self, size):
        if not self.chunks:
            raise OSError("Invalid data stream")
        return self.chunks.pop(0)[:size]


def test_reading_ahead_gives_the_same_chunks_and_the_same_error_in_turn():
    with ReadAhead(_Damaged()) as ahead:
        assert [ahead.read(10), ahead.read(10)] == [b"a" * 10, b"b" * 10]
        with pytest.raises(OSError, match="Invalid data stream"):
            ahead.read(10)
        with pytest.raises(OSError):  # and again: it does not read past the damage
            ahead.read(10)
    with ReadAhead(io.BytesIO(b"x" * 25)) as ahead:
        assert [ahead.read(10) for _ in range(4)] == [b"x" * 10, b"x" * 10, b"x" * 5, b""]
        with pytest.raises(ValueError):
            ahead.read(3)  # another size would change where damage shows


def test_reading_ahead_stops_when_the_reader_does():
    ahead = ReadAhead(io.BytesIO(b"x" * 10_000))
    assert ahead.read(10) == b"x" * 10
    ahead.close()
    assert not ahead.thread.is_alive()
