"""ArXiv's archive forms and LaTeX cleaning, StackExchange 7z dumps and site selection,
GitHub licences and code filters."""

import gzip
import io
import json
import tarfile

import py7zr

from filters.code import check_code, license_family, strip_license_header
from pipelines.recipe import ExtractConfig, FetchConfig, SourceConfig
from pipelines.sources.latex import clean_paper, expand_macros, parse_macros
from pipelines.stages.extract import REJECTS, RouteRecords, select_sites
from tests.conftest import SAMPLES
from tests.pipelines.test_sources import read


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# -- LaTeX -------------------------------------------------------------------------------------


def test_macros_with_arguments_defaults_and_def():
    macros, rest = parse_macros(
        "\\newcommand{\\R}{\\mathbb{R}}\\newcommand\\eps{\\varepsilon}"
        "\\renewcommand{\\norm}[1]{\\|#1\\|}\\providecommand{\\vv}[2][x]{#1_{#2}}"
        "\\def\\pair#1#2{(#1,#2)}\\def\\half{\\frac12}Body"
    )
    assert set(macros) == {"R", "eps", "norm", "vv", "pair", "half"}
    assert rest == "Body"
    text = "$\\R$ $\\eps$ $\\norm{v}$ $\\vv{i}$ $\\vv[y]{j}$ \\pair{a}{b} \\pair ab \\half \\Rx"
    assert expand_macros(text, macros) == (
        "$\\mathbb{R}$ $\\varepsilon$ $\\|v\\|$ $x_{i}$ $y_{j}$ (a,b) (a,b) \\frac12 \\Rx"
    )


def test_nested_macros_expand_until_stable():
    macros, _ = parse_macros("\\newcommand{\\A}{\\B+\\B}\\newcommand{\\B}[1][z]{#1^2}")
    assert expand_macros("\\A", macros) == "z^2+z^2"


def test_inputs_are_inlined_and_comments_dropped():
    files = {
        "paper/main.tex": "\\documentclass{article}\\begin{document}\\section{A}\n"
        "\\input{sections/one}\n\\include{two} % a comment\n\\end{document}",
        "paper/sections/one.tex": "One % hidden\n",
        "paper/two.tex": "Two, 50\\% done\n",
    }
    text, _ = clean_paper(files, "paper/main.tex")
    assert text == "\\section{A}\nOne\n\nTwo, 50\\% done"


def test_recursive_macros_are_left_as_written():
    # TeX loops (a macro that calls itself, or two that call each other) end only through
    # conditionals that are not evaluated here: each pass used to double the text.
    macros, _ = parse_macros(
        "\\def\\loop#1{\\ifnum#1>0 x\\loop{#1}\\loop{#1}\\fi}"
        "\\newcommand{\\ping}{\\pong\\pong}\\newcommand{\\pong}{\\ping\\ping}"
        "\\newcommand{\\ok}{fine}\\newcommand{\\uses}{\\ok, \\loop{3}}"
    )
    text = "\\loop{5} \\ping \\uses"
    assert expand_macros(text, macros) == "\\loop{5} \\ping fine, \\loop{3}"


def test_expansion_stops_growing_at_its_budget():
    macros, _ = parse_macros("\\newcommand{\\big}{" + "word " * 200 + "}")
    text = "\\big " * 500  # 500 uses of a 1,000-character macro
    expanded = expand_macros(text, macros, max_chars=3 * len(text))
    assert len(expanded) <= 3 * len(text)
    assert expanded.count("word") >= 1000 and "\\big" in expanded


def test_definitions_shown_as_verbatim_define_nothing():
    macros, rest = parse_macros(
        "\\newcommand{\\real}{R}\\begin{verbatim}\\def\\shown{S}\\end{verbatim}"
        "\\verb|\\def\\inline{I}| and \\begin{macrocode}\\newcommand{\\code}{C}\\end{macrocode}"
    )
    assert set(macros) == {"real"}
    assert "\\def\\shown{S}" in rest and "\\newcommand{\\code}{C}" in rest


def test_a_percent_inside_verb_is_not_a_comment():
    files = {
        "main.tex": "\\documentclass{article}\\begin{document}\\section{A}\n"
        "Type \\verb?50%? here. % a comment\nNext line\n\\end{document}"
    }
    text, _ = clean_paper(files, "main.tex")
    assert text == "\\section{A}\nType \\verb?50%? here.\nNext line"


def test_providecommand_keeps_an_earlier_definition():
    macros, _ = parse_macros("\\newcommand{\\c}{first}\\providecommand{\\c}{second}")
    assert macros["c"].body == "first"


def test_a_file_that_includes_itself_is_inlined_once():
    files = {
        "main.tex": "\\documentclass{book}\\begin{document}\\include{ch}\\end{document}",
        # The chapter shows how it is included, twice: each level used to double the text.
        "ch.tex": "\\chapter{One} Text. \\include{ch} and \\input{ch}\n",
    }
    text, _ = clean_paper(files, "main.tex")
    assert text.count("Text.") == 1


def test_unbalanced_braces_do_not_swallow_the_paper():
    body = "\\section{Intro} " + "Plain words here. " * 20_000
    files = {
        "main.tex": "\\documentclass{article}\\newcommand{\\x}{open {brace"
        "\n\\begin{document}" + body + "\\end{document}"
    }
    text, _ = clean_paper(files, "main.tex", max_chars=3 * len(files["main.tex"]))
    assert text.startswith("\\section{Intro}") and len(text) > 300_000


def test_many_unbraced_arguments_are_linear():
    # Reading an argument without braces used to copy the rest of the text each time.
    import time

    macros, _ = parse_macros("\\newcommand{\\pair}[2]{(#1,#2)}")
    text = "\\pair ab " * 200_000
    started = time.perf_counter()
    assert expand_macros(text, macros).count("(a,b)") == 200_000
    assert time.perf_counter() - started < 5  # seconds; it took minutes


def test_arxiv_bulk_tar_of_per_paper_members(shared_fixtures, tmp_path):
    fixtures = shared_fixtures / "arxiv"
    bulk = tar_bytes(
        {
            "1801/1801.03879.gz": (fixtures / "1801.03879-1.tar.gz").read_bytes(),
            "1602/1602.00123.gz": gzip.compress((fixtures / "1602.00123.tar").read_bytes()),
            "0905/0905.12345.gz": (fixtures / "hepth_desitterv3.tex.gz").read_bytes(),
            "1602/1602.99999.pdf": b"%PDF-1.4 not latex",
        }
    )
    path = tmp_path / "arXiv_src_1801_001.tar"
    path.write_bytes(bulk)
    docs, rejects = read("arxiv", path)
    assert sorted(d["url"].rsplit("/", 1)[1] for d in docs) == [
        "0905.12345",
        "1602.00123",
        "1801.03879",
    ]
    assert [r.reason for r in rejects] == ["extract:no_latex_source"]
    coloring = next(d for d in docs if d["url"].endswith("1801.03879"))
    # The paper's own macros (\DC, \C, \D) are expanded, its bibliography is gone.
    assert coloring["text"].startswith("\\section{Introduction}\n\n\\textsc{Defective Coloring}")
    assert "\\DC" not in coloring["text"] and "\\newcommand" not in coloring["text"]
    assert "\\bibitem" not in coloring["text"]


def test_letter_without_sections_keeps_its_body(shared_fixtures):
    # A PRL-style letter whose only \section is the supplement: the first-section rule would
    # drop the whole letter.
    (doc,), _ = read("arxiv", shared_fixtures / "arxiv" / "1602.00123.tar")
    assert doc["text"].startswith("Conventional superconductors are well understood")
    assert "SUPPLEMENTAL MATERIAL" in doc["text"]
    assert doc["title"].startswith("Unconventional high-energy-state contribution")


# -- StackExchange -------------------------------------------------------------------------------


def test_stackexchange_7z_archive(tmp_path):
    posts = SAMPLES / "stackexchange" / "sample.stackexchange.com" / "Posts.xml"
    archive = tmp_path / "sample.stackexchange.com.7z"
    with py7zr.SevenZipFile(archive, "w") as out:
        out.write(posts, "Posts.xml")
    docs, rejects = read("stackexchange", archive)
    plain, _ = read("stackexchange", posts)
    assert [d["text"] for d in docs] == [d["text"] for d in plain]
    assert len(docs) == 8
    meta = json.loads(docs[0]["meta"])
    assert meta["site"] == "sample.stackexchange.com" and meta["tags"] == ["sample", "questions"]


def test_corrupt_7z_is_a_recorded_damaged_file(tmp_path):
    path = tmp_path / "broken.stackexchange.com.7z"
    path.write_bytes(b"7z\xbc\xaf\x27\x1c" + b"\x00" * 100)
    docs, (reject,) = read("stackexchange", path)
    assert not docs and reject.reason == "extract:damaged_file" and "7z" in reject.detail


def test_the_largest_sites_are_kept():
    inputs = [
        ("d/a.stackexchange.com.7z", 10, 0.0),
        ("d/b.stackexchange.com.7z", 300, 0.0),
        ("d/stackoverflow.com-Posts.7z", 5000, 0.0),
        ("d/c.stackexchange.com.7z", 20, 0.0),
    ]
    kept = select_sites(inputs, None, 2)
    assert [i[0] for i in kept] == ["d/b.stackexchange.com.7z", "d/stackoverflow.com-Posts.7z"]
    named = select_sites(inputs, ["a.stackexchange.com"], 28)
    assert [i[0] for i in named] == ["d/a.stackexchange.com.7z"]


# -- GitHub ------------------------------------------------------------------------------------

HEADER = "/*\n * Copyright 2020 Someone\n * Licensed under the MIT License.\n */\n"
CODE = "int add(int a, int b) {\n    return a + b;\n}\n"


def test_code_filters():
    assert strip_license_header(HEADER + CODE) == CODE
    assert strip_license_header("# just a comment\n" + CODE).startswith("# just a comment")
    assert check_code(CODE).keep
    long_line = check_code("var a=" + "1," * 800 + "2;")
    assert (long_line.rule, long_line.detail) == ("code_line_length", "longest line 1608")
    assert check_code("{}[]();\n" * 50).rule == "code_alnum_fraction"
    assert [license_family(x) for x in ("MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0")] == [
        "mit",
        "apache",
        "bsd",
        "gpl-3.0",
    ]


def route_github(path):
    spec = SourceConfig(format="github", inputs=[str(path)], weight=1)
    fn = RouteRecords("github", spec, ExtractConfig(), FetchConfig(), "/tmp/unused", {})
    kept, rejected = [], []
    for out in fn.process(str(path)):
        (rejected if getattr(out, "tag", None) == REJECTS else kept).append(
            out.value if hasattr(out, "tag") else out
        )
    return kept, rejected


def test_github_rows_keep_permissive_licences_only(tmp_path):
    rows = [
        {"repo_name": "a/mit", "path": "x.c", "license": "mit", "content": HEADER + CODE},
        {"repo_name": "a/gpl", "path": "y.c", "license": "gpl-3.0", "content": CODE},
        {
            "repo_name": "a/apache",
            "path": "z.js",
            "license": "apache-2.0",
            "content": "x=" + "1," * 900,
        },
    ]
    path = tmp_path / "contents-000.json.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    kept, rejected = route_github(path)
    assert [(d["title"], d["text"]) for d in kept] == [("x.c", CODE)]
    assert sorted(r["reason"] for r in rejected) == ["extract:code_line_length", "extract:license"]


def test_github_repository_archive(tmp_path):
    mit = b"MIT License\n\nPermission is hereby granted, free of charge, to any person..."
    archive = tar_bytes(
        {
            "proj-abc123/src/add.c": (HEADER + CODE).encode(),
            "proj-abc123/README.md": b"# proj\n\nAdds numbers.\n",
            "proj-abc123/logo.png": b"\x89PNG\0\0",
            "proj-abc123/LICENSE": mit,
        }
    )
    path = tmp_path / "proj-abc123.tar.gz"
    path.write_bytes(gzip.compress(archive))
    kept, rejected = route_github(path)
    assert sorted(d["title"] for d in kept) == ["README.md", "src/add.c"]
    assert all(json.loads(d["meta"])["license"] == "mit" for d in kept)
    gpl = tmp_path / "other-def456.tar"
    gpl.write_bytes(
        tar_bytes(
            {
                "other-def456/a.py": b"print('hi')\n",
                "other-def456/COPYING": b"GNU GENERAL PUBLIC LICENSE v3",
            }
        )
    )
    kept, rejected = route_github(gpl)
    assert not kept and [r["reason"] for r in rejected] == ["extract:license"]
