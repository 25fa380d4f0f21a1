"""Damaged and hostile input: every case becomes a recorded rejection with its reason, what
was read before the damage is kept, and nothing stops the stage."""

import bz2
import gzip
import io
import json
import tarfile

import pytest

from pipelines.recipe import ExtractConfig
from pipelines.sources import READERS, Partial, Rejected, read_file
from pipelines.stages.extract import REJECTS, route
from tests.conftest import SAMPLES


def read(fmt, path, limits=None):
    records = list(read_file(str(path), "s", READERS[fmt], limits))
    docs = [r for r in records if isinstance(r, dict)]
    rejects = [r for r in records if isinstance(r, Rejected)]
    partials = [r for r in records if isinstance(r, Partial)]
    return docs, rejects, partials


def lines(*texts):
    return "".join(json.dumps({"text": t, "url": f"u{i}"}) + "\n" for i, t in enumerate(texts))


def test_not_gzip_at_all(tmp_path):
    path = tmp_path / "broken.json.gz"
    path.write_bytes(b"this is not gzip at all")
    docs, (reject,), _ = read("c4", path)
    assert not docs
    assert reject.reason == "extract:damaged_file"
    assert reject.detail.startswith("broken.json.gz: gzip ")


def test_truncated_gzip_keeps_what_came_before(tmp_path):
    data = gzip.compress(lines(*[f"document number {i} " * 20 for i in range(2000)]).encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    docs, rejects, _ = read("c4", path)
    assert 100 < len(docs) < 2000
    assert [r.reason for r in rejects] == ["extract:damaged_file"]
    assert "EOFError" in rejects[0].detail or "Compressed file ended" in rejects[0].detail


def test_corrupt_bz2(tmp_path):
    good = bz2.compress(
        (SAMPLES / "wikipedia" / "enwiki-20200101-pages-articles-sample.xml.bz2").read_bytes()
    )
    path = tmp_path / "enwiki-broken.xml.bz2"
    path.write_bytes(good[:100] + b"\x00" * 100 + good[200:])
    docs, (reject,), _ = read("mediawiki", path)
    assert reject.reason == "extract:damaged_file" and "bzip2" in reject.detail


def test_truncated_warc_record_keeps_earlier_records(tmp_path):
    wet = next((SAMPLES / "commoncrawl").glob("*.wet.gz"))
    raw = gzip.decompress(wet.read_bytes())
    cut = raw[: int(len(raw) * 0.6)]
    path = tmp_path / "cut.warc.wet"
    path.write_bytes(cut)
    docs, rejects, _ = read("wet", path)
    assert 20 < len(docs) < 136
    assert [r.reason for r in rejects] == ["extract:damaged_file"]


def test_truncated_gzip_member_of_a_warc(tmp_path):
    wet = next((SAMPLES / "commoncrawl").glob("*.wet.gz")).read_bytes()
    path = tmp_path / "cut.warc.wet.gz"
    path.write_bytes(wet[: len(wet) // 2])
    docs, rejects, _ = read("wet", path)
    assert len(docs) > 10 and [r.reason for r in rejects] == ["extract:damaged_file"]


def test_invalid_utf8_replaced_then_judged_by_how_much():
    limits = ExtractConfig()
    a_little = {"id": "s/1", "text": "fine text " * 50 + "\ufffd"}
    mostly = {"id": "s/2", "text": "\ufffd" * 50 + "abc"}
    routed = list(route([a_little, mostly], limits))
    assert routed[0] is a_little
    assert routed[1].tag == REJECTS and routed[1].value["reason"] == "extract:invalid_utf8"


def test_invalid_utf8_bytes_in_a_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"text": "caf\u00e9 ok"}).encode()
    path.write_bytes(good + b"\n" + b'{"text": "\xff\xfe broken"}\n')
    docs, rejects, _ = read("jsonl", path)
    assert [d["text"] for d in docs] == ["caf\u00e9 ok", "\ufffd\ufffd broken"]


def test_malformed_xml_keeps_rows_before_the_damage(tmp_path):
    posts = (SAMPLES / "stackexchange" / "sample.stackexchange.com" / "Posts.xml").read_text()
    cut = posts[: len(posts) // 2] + '<row Id="999" Body="unclosed'
    site = tmp_path / "broken.stackexchange.com"
    site.mkdir()
    (site / "Posts.xml").write_text(cut)
    docs, rejects, partials = read("stackexchange", site / "Posts.xml")
    assert len(partials) > 5
    assert rejects[-1].reason == "extract:damaged_file" and "cut short" in rejects[-1].detail


@pytest.mark.parametrize(
    "xml",
    [
        # billion laughs
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        '<posts><row Id="1" PostTypeId="1" Body="&lol2;" /></posts>',
        # external entity
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<posts><row Id="1" PostTypeId="1" Body="&xxe;" /></posts>',
    ],
)
def test_xml_entity_tricks_are_refused(tmp_path, xml):
    path = tmp_path / "evil.stackexchange.com-Posts.xml"
    path.write_text(xml)
    docs, (reject,), partials = read("stackexchange", path)
    assert not docs and not partials
    assert reject.reason == "extract:damaged_file"
    assert "Forbidden" in reject.detail


def test_mediawiki_entity_tricks_are_refused(tmp_path):
    path = tmp_path / "evil-pages-articles.xml"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        "<mediawiki><page><title>&e;</title><ns>0</ns><id>1</id></page></mediawiki>"
    )
    docs, (reject,), _ = read("mediawiki", path)
    assert not docs and "Forbidden" in reject.detail


@pytest.mark.parametrize(
    "fmt,name,body",
    [
        (
            "stackexchange",
            "odd.stackexchange.com-Posts.xml",
            '<posts>\n  <row Id="1" PostTypeId="1" Title="t" Body="b" />\n</posts>\n',
        ),
        (
            "mediawiki",
            "odd-pages-articles.xml",
            "<mediawiki>\n  <page><title>T</title><ns>0</ns><id>1</id>"
            "<revision><text>Some words.</text></revision></page>\n</mediawiki>\n",
        ),
    ],
)
def test_an_unknown_declared_encoding_refuses_the_dump(tmp_path, fmt, name, body):
    path = tmp_path / name
    path.write_text('<?xml version="1.0" encoding="u0tf-8"?>\n' + body)
    docs, (reject,), partials = read(fmt, path)
    assert not docs and not partials
    assert reject.reason == "extract:damaged_file"
    assert "unknown encoding: u0tf-8" in reject.detail


def _tar(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name, kind, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, None


def test_unsafe_tar_members_are_recorded_and_skipped(tmp_path):
    book = b"A fine book about rivers. " * 40
    archive = _tar(
        [
            _file("books/good.txt", book),
            _file("/etc/absolute.txt", b"x"),
            _file("books/../../escape.txt", b"x"),
            _special("books/link.txt", tarfile.SYMTYPE, "/etc/passwd"),
            _special("books/hard.txt", tarfile.LNKTYPE, "books/good.txt"),
            _special("books/dev", tarfile.CHRTYPE),
            _special("books/fifo", tarfile.FIFOTYPE),
        ]
    )
    path = tmp_path / "books3-part.tar"
    path.write_bytes(archive)
    docs, rejects, _ = read("books-text", path)
    assert [d["title"] for d in docs] == ["good"]
    assert docs[0]["text"] == book.decode()
    assert len(rejects) == 6 and {r.reason for r in rejects} == {"extract:unsafe_tar_member"}
    details = " ".join(r.detail for r in rejects)
    for needle in ("unsafe path '/etc/absolute.txt'", "escape.txt", "link", "device or fifo"):
        assert needle in details


def test_unsafe_members_in_an_arxiv_submission(tmp_path):
    main = b"\\documentclass{article}\\begin{document}\\section{Intro}Text here.\\end{document}"
    archive = _tar([_file("main.tex", main), _file("../evil.tex", b"\\documentclass{x}")])
    path = tmp_path / "2001.99999.tar.gz"
    path.write_bytes(gzip.compress(archive))
    docs, rejects, _ = read("arxiv", path)
    assert [d["text"] for d in docs] == ["\\section{Intro}Text here."]
    assert [r.reason for r in rejects] == ["extract:unsafe_tar_member"]


def test_decompression_bomb_is_stopped(tmp_path):
    path = tmp_path / "bomb.json.gz"
    path.write_bytes(gzip.compress(b" " * 20_000_000))  # 20 MB of spaces in ~20 KB
    limits = ExtractConfig(compression_check_after_bytes=1_000_000, max_compression_ratio=100)
    docs, (reject,), _ = read("c4", path, limits)
    assert reject.reason == "extract:too_large" and "decompression bomb" in reject.detail


def test_oversized_tar_member_is_refused_without_reading(tmp_path):
    archive = _tar([_file("big.txt", b"y" * 5000), _file("small.txt", b"a small book " * 10)])
    path = tmp_path / "books.tar"
    path.write_bytes(archive)
    docs, rejects, _ = read("books-text", path, ExtractConfig(max_member_bytes=1000))
    assert [d["title"] for d in docs] == ["small"]
    assert rejects[0].reason == "extract:unsafe_tar_member" and "5000 bytes" in rejects[0].detail


def test_empty_files(tmp_path):
    for fmt, name in [
        ("c4", "empty.json.gz"),
        ("jsonl", "empty.jsonl"),
        ("wet", "e.warc.wet"),
        ("mediawiki", "e-pages-articles.xml"),
        ("gutenberg", "1.txt"),
    ]:
        path = tmp_path / name
        path.write_bytes(gzip.compress(b"") if name.endswith(".gz") else b"")
        docs, rejects, _ = read(fmt, path)
        routed = list(route(docs, ExtractConfig()))
        assert all(r.value["reason"] == "extract:empty_text" for r in routed), fmt
        assert [r.reason for r in rejects] in ([], ["extract:empty_file"]), fmt


def test_a_100_mb_document_on_one_line(tmp_path):
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as out:
        out.write(json.dumps({"text": "small before"}).encode() + b"\n")
        out.write(b'{"text": "' + b"x" * 100_000_000 + b'"}\n')
        out.write(json.dumps({"text": "small after"}).encode() + b"\n")
    docs, rejects, _ = read("jsonl", path)
    assert [d["text"] for d in docs] == ["small before", "small after"]
    assert [r.reason for r in rejects] == ["extract:too_large"]


def test_a_huge_document_inside_a_warc_record():
    limits = ExtractConfig(max_document_bytes=1000)
    wet = next((SAMPLES / "commoncrawl").glob("*.wet.gz"))
    docs, rejects, _ = read("wet", wet, limits)
    assert docs and rejects and {r.reason for r in rejects} == {"extract:too_large"}


def _sample_wet() -> bytes:
    return next((SAMPLES / "commoncrawl").glob("*.wet.gz")).read_bytes()


def _members(data: bytes) -> list[bytes]:
    """The gzip members of a per-record gzipped WARC, as bytes."""
    import zlib

    members, position = [], 0
    while position < len(data):
        inflater = zlib.decompressobj(31)
        inflater.decompress(data[position:])
        end = len(data) - len(inflater.unused_data)
        members.append(data[position:end])
        position = end
    return members


def test_a_record_without_id_or_uri_is_one_reject_and_the_file_goes_on(tmp_path):
    members = _members(_sample_wet())
    record = gzip.decompress(members[5])
    for header in (b"WARC-Record-ID", b"WARC-Target-URI"):
        start = record.index(header)
        record = record[:start] + record[record.index(b"\r\n", start) + 2 :]
    path = tmp_path / "no-ids.warc.wet.gz"
    path.write_bytes(b"".join(members[:5]) + gzip.compress(record) + b"".join(members[6:]))
    docs, rejects, _ = read("wet", path)
    assert len(docs) == len(members) - 2  # the warcinfo record and the broken one
    (reject,) = rejects
    assert reject.reason == "extract:incomplete_record"
    assert reject.detail == "no WARC-Record-ID or WARC-Target-URI"


@pytest.mark.parametrize("compressed", [True, False])
def test_garbage_inside_a_warc_is_skipped_counted_and_escaped(tmp_path, compressed):
    data = _sample_wet()
    members = _members(data)
    garbage = bytes(range(256)) * 8 + b"\x1b[2J\x00"  # binary, a terminal escape, a NUL
    if compressed:
        damaged = b"".join(members[:40]) + garbage + b"".join(members[40:])
        # A member whose middle was overwritten does not inflate.
        broken = members[60][:40] + b"\xff" * 64 + members[60][104:]
        damaged = damaged.replace(members[60], broken)
        path = tmp_path / "damaged.warc.wet.gz"
    else:
        raw = [gzip.decompress(m) for m in members]
        damaged = b"".join(raw[:40]) + garbage + b"".join(raw[40:])
        path = tmp_path / "damaged.warc.wet"
    path.write_bytes(damaged)
    docs, rejects, _ = read("wet", path)
    clean_ids = {d["id"] for d in read_wet_ids(data, tmp_path)}
    kept_ids = {d["id"] for d in docs}
    # Every record after the damage is read; only the overwritten one is lost.
    lost = 1 if compressed else 0
    assert len(kept_ids) == len(clean_ids) - lost and kept_ids <= clean_ids
    assert {r.reason for r in rejects} == {"extract:damaged_record"}
    assert len(rejects) == 1 + lost
    assert sum(r.skipped_bytes for r in rejects) >= len(garbage)
    for reject in rejects:
        assert reject.detail.isprintable() and "\x1b" not in reject.detail
        assert "bytes skipped at byte" in reject.detail


@pytest.mark.parametrize("member, split", [(7, False), (88, False), (45, True)])
def test_a_record_whose_gzip_checksum_fails_is_not_kept(tmp_path, monkeypatch, member, split):
    """A flipped bit inside a record's text still inflates; the member's CRC at its end is
    what catches it, and the record must not reach the output wherever the reads of the file
    end: member 88 of the sample straddles the first 64 KiB, and `split` makes the first read
    end right before the member's CRC, after all of its text."""
    if split:
        end = sum(len(m) for m in _members(_sample_wet())[: member + 1])
        monkeypatch.setattr("pipelines.sources.warc_records._CHUNK", end - 8)
    data = _sample_wet()
    members = _members(data)
    raw = bytearray(gzip.decompress(members[member]))
    raw[raw.index(b"\r\n\r\n") + 20] ^= 0x01  # a bit of the text
    good = gzip.compress(bytes(raw), mtime=0)
    bad = good[:-8] + gzip.compress(gzip.decompress(members[member]), mtime=0)[-8:]
    path = tmp_path / "flipped.warc.wet.gz"
    path.write_bytes(b"".join(members[:member]) + bad + b"".join(members[member + 1 :]))
    docs, rejects, _ = read("wet", path)
    clean = read_wet_ids(data, tmp_path)
    lost = clean[member - 1]  # the warcinfo record is not a document
    assert [d["id"] for d in docs] == [d["id"] for d in clean if d is not lost]
    (reject,) = rejects
    assert reject.reason == "extract:damaged_record" and "incorrect data check" in reject.detail
    offset = sum(len(m) for m in members[:member])
    assert reject.skipped_bytes == len(bad) and f"at byte {offset}" in reject.detail


def read_wet_ids(data: bytes, tmp_path) -> list[dict]:
    path = tmp_path / "clean.warc.wet.gz"
    path.write_bytes(data)
    return read("wet", path)[0]


@pytest.mark.parametrize("fmt, name", [("wet", "random.warc.wet.gz"), ("warc", "random.warc")])
def test_random_bytes_are_not_a_warc_file(tmp_path, fmt, name):
    import random

    data = random.Random(1).randbytes(50_000)
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    docs, (reject,), _ = read(fmt, path)
    assert not docs
    assert reject.reason == "extract:wrong_format" and "no WARC record" in reject.detail
    assert reject.skipped_bytes > 0


@pytest.mark.parametrize(
    "line, reason, detail",
    [
        ('{"text": 42}', "extract:wrong_type", "`text` is a number, not a string"),
        ('{"text": ["a", "b"]}', "extract:wrong_type", "`text` is a list, not a string"),
        ('{"text": {"a": 1}}', "extract:wrong_type", "`text` is an object, not a string"),
        ('{"text": null}', "extract:missing_field", "no `text` field"),
        ('{"body": "x"}', "extract:missing_field", "no `text` field"),
        ("[1, 2]", "extract:bad_json", "a list, not an object"),
        ("[" * 100_000, "extract:bad_json", None),
    ],
)
def test_json_lines_of_the_wrong_shape_get_their_own_reason(tmp_path, line, reason, detail):
    path = tmp_path / "shapes.jsonl"
    path.write_text(json.dumps({"text": "a good line", "url": 7}) + "\n" + line + "\n")
    docs, (reject,), _ = read("jsonl", path)
    assert [d["text"] for d in docs] == ["a good line"] and docs[0]["url"] is None
    assert reject.reason == reason
    assert detail is None or reject.detail == detail


def test_c4_fields_of_the_wrong_type(tmp_path):
    path = tmp_path / "c4-types.json.gz"
    rows = [{"text": "fine", "url": ["not", "a", "url"], "timestamp": 5}, {"text": 3.5}]
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    docs, (reject,), _ = read("c4", path)
    assert docs[0]["url"] is None and docs[0]["timestamp"] is None
    assert reject.reason == "extract:wrong_type"


def test_a_gzip_of_random_bytes_is_one_damaged_file_not_many_bad_lines(tmp_path):
    import random

    path = tmp_path / "c4-random.json.gz"
    path.write_bytes(gzip.compress(random.Random(0).randbytes(200_000)))
    docs, rejects, _ = read("c4", path)
    assert not docs
    assert [r.reason for r in rejects] == ["extract:wrong_format"]
    assert rejects[0].detail.startswith("c4-random.json.gz: not JSON Lines")


def test_damaged_rows_cost_themselves_and_the_rows_after_are_read(tmp_path):
    posts = (SAMPLES / "stackexchange" / "sample.stackexchange.com" / "Posts.xml").read_bytes()
    rows = posts.split(b"\n")
    row_lines = [i for i, line in enumerate(rows) if line.strip().startswith(b"<row")]
    bad = row_lines[3], row_lines[7]
    rows[bad[0]] = rows[bad[0]][:40] + b'\xff\x00 "<<' + rows[bad[0]][40:]  # broken XML
    rows.insert(bad[1], b"\x00\x01garbage between rows\x1b[31m")
    site = tmp_path / "damaged.stackexchange.com"
    site.mkdir()
    (site / "Posts.xml").write_bytes(b"\n".join(rows))
    _, rejects, partials = read("stackexchange", site / "Posts.xml")
    damage = [r for r in rejects if r.reason == "extract:damaged_record"]
    others = [r for r in rejects if r.reason != "extract:damaged_record"]
    assert len(partials) + len(others) == len(row_lines) - 1
    assert len(damage) == 2 and all(r.skipped_bytes > 0 for r in damage)
    assert all(r.detail.isprintable() for r in damage)


def test_a_damaged_page_costs_that_page_only(tmp_path):
    dump = bz2.decompress(
        (SAMPLES / "wikipedia" / "enwiki-20200101-pages-articles-sample.xml.bz2").read_bytes()
    )
    clean = tmp_path / "clean-pages-articles.xml"
    clean.write_bytes(dump)
    good_docs, good_rejects, _ = read("mediawiki", clean)
    pages = dump.split(b"<page>")
    pages[2] = pages[2].replace(b"</title>", b"</titel>", 1)  # no longer well formed
    pages[4] = pages[4].replace(b"</page>", b"</page>\x00\xff junk", 1)
    damaged = tmp_path / "damaged-pages-articles.xml"
    damaged.write_bytes(b"<page>".join(pages))
    docs, rejects, _ = read("mediawiki", damaged)
    assert len(docs) == len(good_docs) - 1
    reasons = [r.reason for r in rejects if r.reason.startswith("extract:damaged")]
    assert reasons == ["extract:damaged_record", "extract:damaged_record"]


def test_a_dump_with_no_page_is_the_wrong_format(tmp_path):
    path = tmp_path / "x-pages-articles.xml.bz2"
    path.write_bytes(bz2.compress(b"just some text, no XML\n" * 100))
    docs, (reject,), _ = read("mediawiki", path)
    assert not docs and reject.reason == "extract:wrong_format"


def _spin_when(marker: str, real):
    """`real`, except that it never returns on a text that holds `marker`."""

    def run(*args, **kwargs):
        if any(marker in str(a) for a in args):
            while True:
                pass
        return real(*args, **kwargs)

    return run


def test_a_document_past_its_time_budget_is_rejected_and_the_file_goes_on(tmp_path, monkeypatch):
    import pipelines.sources.arxiv as arxiv

    monkeypatch.setattr(arxiv, "clean_paper", _spin_when("SPIN", arxiv.clean_paper))
    paper = "\\documentclass{article}\\begin{document}\\section{A}%s text.\\end{document}"
    archive = _tar(
        [
            _file("2001/2001.00001.gz", gzip.compress((paper % "SPIN").encode())),
            _file("2001/2001.00002.gz", gzip.compress((paper % "Fine").encode())),
        ]
    )
    path = tmp_path / "arXiv_src_2001_001.tar"
    path.write_bytes(archive)
    docs, (reject,), _ = read("arxiv", path, ExtractConfig(max_document_seconds=0.3))
    assert [d["text"] for d in docs] == ["\\section{A}Fine text."]
    assert reject.reason == "extract:too_slow" and reject.threshold == 0.3
    assert 0.3 <= reject.value < 5 and "limit 0.3 s" in reject.detail


def test_a_document_past_its_budget_in_the_filters_is_rejected(monkeypatch):
    from pipelines.transforms.quality import DecideFn

    decide = DecideFn([], "quality/s", max_document_seconds=0.3)
    decide.setup()
    monkeypatch.setattr(decide.chain, "decide", _spin_when("SPIN", decide.chain.decide))
    slow = decide.decide({"text": "SPIN " * 100})
    assert slow.reason == "too_slow" and slow.verdict.threshold == 0.3
    assert slow.verdict.value >= 0.3
    assert decide.decide({"text": "ordinary words " * 100}).verdict.keep


def test_text_that_outgrows_its_source_is_rejected_with_the_factor():
    from pipelines.sources.base import cleaned

    limits = ExtractConfig(max_growth=3.0)
    doc = {"id": "s/1", "text": ""}
    grown = cleaned(dict(doc), limits, 1000, lambda: "x" * 5000)
    assert grown.reason == "extract:too_much_growth" and grown.value == 5.0
    assert cleaned(dict(doc), limits, 1000, lambda: "x" * 2900)["text"] == "x" * 2900


@pytest.mark.integration
def test_the_extract_manifest_counts_the_damage(tmp_path, lid_model_path):
    from flows.recipe import load_recipe
    from pipelines.stages import STAGE_CLASSES, StageContext, run_stage
    from tests.conftest import write_recipe

    members = _members(_sample_wet())
    garbage = b"\x00not a record\xff" * 40
    (tmp_path / "cc").mkdir()
    (tmp_path / "cc" / "damaged.warc.wet.gz").write_bytes(
        b"".join(members[:30]) + garbage + b"".join(members[30:])
    )
    recipe = load_recipe(write_recipe(tmp_path))
    recipe.sources["commoncrawl"].inputs = [str(tmp_path / "cc" / "*.wet.gz")]
    ctx = StageContext.from_recipe(recipe)
    (result,) = run_stage(STAGE_CLASSES["extract"](), ctx, ["commoncrawl"])
    manifest = result.manifest
    assert manifest["skipped_bytes"] == len(garbage)
    assert manifest["rejected_by_reason"] == {"extract:damaged_record": 1}
    assert manifest["counts"]["kept"] == len(members) - 1  # the warcinfo record is no document
    (problem,) = manifest["file_problems"]
    assert problem["detail"].startswith("damaged.warc.wet.gz: not a gzip member: ")


def test_a_reader_that_fails_costs_its_file_not_the_stage(tmp_path):
    def broken(path, source, fh, limits):
        yield {"id": "s/1", "source": "s", "text": "read before the failure"}
        raise KeyError("a field this reader did not expect")

    path = tmp_path / "odd.jsonl"
    path.write_text('{"text": "x"}\n')
    records = list(read_file(str(path), "s", broken))
    assert records[0]["text"] == "read before the failure"
    assert records[1].reason == "extract:reader_error"
    assert records[1].detail == "odd.jsonl: KeyError: 'a field this reader did not expect'"
