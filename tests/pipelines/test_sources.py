"""Every reader on our own samples and on real public files of each format."""

import collections
import gzip
import json

from pipelines.recipe import ExtractConfig
from pipelines.sources import ASSEMBLERS, READERS, Partial, Rejected, read_file
from tests.conftest import SAMPLES


def read(fmt, path, source="s"):
    records = list(read_file(str(path), source, READERS[fmt]))
    if fmt in ASSEMBLERS:
        groups = collections.defaultdict(list)
        rest = []
        for r in records:
            if isinstance(r, Partial):
                groups[r.key].append(r.value)
            else:
                rest.append(r)
        for key, parts in groups.items():
            rest.extend(ASSEMBLERS[fmt](source, key, parts, ExtractConfig()))
        records = rest
    docs = [r for r in records if isinstance(r, dict)]
    rejects = [r for r in records if isinstance(r, Rejected)]
    return docs, rejects


def test_wet_sample_keeps_url_timestamp_and_crawl():
    docs, rejects = read("wet", next((SAMPLES / "commoncrawl").glob("*.wet.gz")))
    assert len(docs) == 136 and not rejects
    first = docs[0]
    assert first["url"] == "https://blog.example.org/" + first["url"].split("/")[3] + "/0"
    assert first["timestamp"] == "2020-01-17T10:00:00Z"
    assert json.loads(first["meta"])["crawl"] == "CC-MAIN-2020-05"
    assert len({d["id"] for d in docs}) == 136  # ids are unique per record


def test_ids_are_stable_across_reads_and_locations(tmp_path):
    path = next((SAMPLES / "commoncrawl").glob("*.wet.gz"))
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    assert [d["id"] for d in read("wet", path)[0]] == [d["id"] for d in read("wet", copy)[0]]


def test_warc_extracts_main_text_and_rejects_non_html():
    docs, rejects = read("warc", next((SAMPLES / "commoncrawl").glob("*.warc.gz")))
    assert len(docs) == 3
    assert [r.reason for r in rejects] == ["extract:not_html"]
    text = docs[0]["text"]
    assert "var tracking" not in text and "Copyright 2020" not in text
    assert "Rivers" in text.splitlines()[0]


def test_c4_reads_every_line_with_url_and_timestamp():
    docs = []
    for path in sorted((SAMPLES / "c4").glob("*.json.gz")):
        docs += read("c4", path)[0]
    assert len(docs) == 42
    assert all(d["url"].startswith("https://www.c4-example-") for d in docs)
    assert docs[0]["timestamp"] == "2019-04-01T00:12:30Z"


def test_bad_json_line_is_a_recorded_rejection(tmp_path):
    path = tmp_path / "c4.json.gz"
    path.write_bytes(gzip.compress(b'{"text": "ok", "url": "u"}\n{not json\n[1]\n'))
    docs, rejects = read("c4", path)
    assert [d["text"] for d in docs] == ["ok"]
    assert [r.reason for r in rejects] == ["extract:bad_json", "extract:bad_json"]


def test_mediawiki_sample_cleans_wikitext():
    docs, rejects = read(
        "mediawiki", SAMPLES / "wikipedia" / "enwiki-20200101-pages-articles-sample.xml.bz2"
    )
    # 8 topics x 2 articles and 56 encyclopedia articles; the talk page is not an article
    assert len(docs) == 16 + 56
    assert sorted(r.reason for r in rejects) == ["extract:redirect"] * 2
    bread = next(d for d in docs if d["title"] == "Bread")
    text = bread["text"]
    for markup in (
        "{{",
        "}}",
        "[[",
        "]]",
        "<ref",
        "Category:",
        "File:",
        "'''",
        "wikitable",
        "<!--",
    ):
        assert markup not in text, markup
    assert text.startswith("Bread is a sample article.")
    assert bread["url"] == "https://en.wikipedia.org/wiki/Bread"


def test_mediawiki_other_language_uses_its_namespace_names():
    docs, _ = read(
        "mediawiki", SAMPLES / "wikipedia" / "dewiki-20200101-pages-articles-sample.xml.bz2"
    )
    assert len(docs) == 5
    assert all("Datei:" not in d["text"] and "Kategorie:" not in d["text"] for d in docs)
    assert docs[0]["url"].startswith("https://de.wikipedia.org/wiki/")


def test_gutenberg_header_and_licence_removed_in_each_variant():
    for path in sorted((SAMPLES / "gutenberg").glob("*.txt")):
        docs, _ = read("gutenberg", path)
        (doc,) = docs
        text = doc["text"]
        assert "Project Gutenberg" not in text and "PROJECT GUTENBERG" not in text, path.name
        assert "\r" not in text
        assert text.startswith(doc["title"].upper())
        assert json.loads(doc["meta"])["author"]
        assert doc["url"] == f"https://www.gutenberg.org/ebooks/{path.stem}"


def test_arxiv_keeps_sections_drops_preamble_comments_bibliography():
    for path in sorted((SAMPLES / "arxiv").glob("*.gz")):
        (doc,), _ = read("arxiv", path)
        text = doc["text"]
        assert text.startswith("\\section{Introduction}")
        assert "TODO" not in text and "Unused appendix" not in text
        assert "thebibliography" not in text and "\\documentclass" not in text
        assert "50\\%" in text  # an escaped percent sign is not a comment
        assert doc["title"]


def test_stackexchange_threads_answers_sorted_by_score():
    docs, rejects = read(
        "stackexchange", SAMPLES / "stackexchange" / "sample.stackexchange.com" / "Posts.xml"
    )
    assert len(docs) == 8
    assert sorted(r.reason for r in rejects) == [
        "extract:answers_without_question",
        "extract:not_question_or_answer",
    ]
    thread = next(d for d in docs if d["title"].startswith("How do I read a file"))
    text = thread["text"]
    assert "<p>" not in text and "<code>" not in text
    assert (
        text.index("Iterate over the file") < text.index("line numbers") < text.index("readlines")
    )
    assert (
        thread["url"]
        == "https://sample.stackexchange.com/questions/" + thread["url"].rsplit("/", 1)[1]
    )


# -- real public files ---------------------------------------------------------------------------


def test_real_wet(shared_fixtures):
    docs, _ = read("wet", shared_fixtures / "commoncrawl" / "whirlwind.warc.wet.gz")
    assert len(docs) == 1
    assert docs[0]["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert json.loads(docs[0]["meta"])["crawl"] == "CC-MAIN-2024-22"


def test_real_warc(shared_fixtures):
    docs, rejects = read(
        "warc", shared_fixtures / "commoncrawl" / "resiliparse-CC-MAIN-2020-34-excerpt.warc.gz"
    )
    assert len(docs) + len(rejects) == 16
    assert sum(1 for d in docs if len(d["text"]) > 200) >= 10


def test_real_c4(shared_fixtures):
    docs, rejects = read("c4", shared_fixtures / "c4" / "olmo-c4-sample.00000-of-00001.json.gz")
    assert len(docs) == 1000 and not rejects
    assert docs[0]["timestamp"]  # this file names it `date`


def test_real_wikipedia(shared_fixtures):
    path = next((shared_fixtures / "wikipedia").glob("*.bz2"))
    docs, rejects = read("mediawiki", path)
    assert len(rejects) == 99 and all(r.reason == "extract:redirect" for r in rejects)
    assert len(docs) == 106
    anarchism = next(d for d in docs if d["title"] == "Anarchism")
    assert anarchism["text"].startswith("Anarchism is a political philosophy")
    assert "{{" not in anarchism["text"] and "[[" not in anarchism["text"]
    assert "<ref" not in anarchism["text"]


def test_real_gutenberg_matches_reference_cleaning(shared_fixtures):
    import difflib

    for raw in sorted((shared_fixtures / "gutenberg" / "raw").glob("*.txt")):
        (doc,), _ = read("gutenberg", raw)
        expected = (shared_fixtures / "gutenberg" / "clean" / raw.name).read_text(errors="replace")
        ours, theirs = doc["text"].split(), expected.split()
        # The same body, give or take a few words at the edges.
        assert abs(len(ours) - len(theirs)) / len(theirs) < 0.02, raw.name
        ratio = difflib.SequenceMatcher(None, ours[:2000], theirs[:2000], autojunk=False).ratio()
        assert ratio > 0.95, (raw.name, ratio)


def test_real_arxiv(shared_fixtures):
    (doc,), _ = read("arxiv", shared_fixtures / "arxiv" / "1801.03879-1.tar.gz")
    assert doc["title"].startswith("Parameterized (Approximate) Defective Coloring")
    assert doc["text"].startswith("\\section{Introduction}")
    (single,), _ = read("arxiv", shared_fixtures / "arxiv" / "hepth_desitterv3.tex.gz")
    assert "supersymmetric" in single["text"]


def test_real_stackexchange(shared_fixtures):
    docs, rejects = read(
        "stackexchange", shared_fixtures / "stackexchange" / "coffee.stackexchange.com-Posts.xml"
    )
    assert len(docs) == 225  # every question, its answers folded in
    assert sum(1 for r in rejects if r.reason == "extract:not_question_or_answer") == 40
    assert all("<p>" not in d["text"] for d in docs)
    assert docs[0]["url"].startswith("https://coffee.stackexchange.com/questions/")


def test_jsonl_uses_the_given_id_url_and_meta(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        '{"text": "hello there", "id": "doc-1", "url": "https://x.org", "meta": {"k": 1}}\n'
        '{"text": "no id here"}\n\n'
    )
    docs, rejects = read("jsonl", path)
    assert not rejects and [d["text"] for d in docs] == ["hello there", "no id here"]
    assert docs[0]["url"] == "https://x.org" and json.loads(docs[0]["meta"]) == {"k": 1}
    again, _ = read("jsonl", path)
    assert docs[0]["id"] == again[0]["id"] != docs[1]["id"]
    renamed = tmp_path / "renamed.jsonl"
    renamed.write_text(path.read_text())
    # A given id survives renaming the file; a line position does not claim to.
    assert read("jsonl", renamed)[0][0]["id"] == docs[0]["id"]


def test_github_rows_become_files_with_repo_and_licence(tmp_path):
    path = tmp_path / "contents-000.json.gz"
    rows = [{"repo_name": "o/r", "path": "src/a.py", "license": "mit", "content": "print(1)\n"}]
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    (doc,), _ = read("github", path)
    assert doc["text"] == "print(1)\n" and doc["title"] == "src/a.py"
    assert json.loads(doc["meta"]) == {"repo_name": "o/r", "path": "src/a.py", "license": "mit"}


def test_wikitext_comment_mentioning_ref_does_not_eat_the_lead():
    from pipelines.sources.mediawiki import wikitext_to_text

    wikitext = (
        "<!-- Editors: use <ref> for cited references. -->\n"
        "'''Autism''' is a [[neurodevelopmental disorder]].<ref>Source, 2001.</ref>\n\n"
        '== Causes ==\nMany.<ref name="a" />'
    )
    assert wikitext_to_text(wikitext) == "Autism is a neurodevelopmental disorder.\n\nCauses\nMany."


def test_real_wikipedia_keeps_article_leads(shared_fixtures):
    path = next((shared_fixtures / "wikipedia").glob("*.bz2"))
    docs, _ = read("mediawiki", path)
    autism = next(d for d in docs if d["title"] == "Autism")
    assert autism["text"].startswith("Autism is a neurodevelopmental disorder characterized by")
