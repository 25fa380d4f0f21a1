import json

import pyarrow.parquet as pq
import pytest
import yaml

from filters.url_blocklist import UrlBlocklistConfig, read_domains

BLOCK = UrlBlocklistConfig(domains=["example.com", "Spam.Example.NET", "bücher.example"]).build()


def reason(url):
    verdict = BLOCK({"text": "Some text.", "url": url})
    return None if verdict.keep else (verdict.rule, verdict.detail)


def test_a_listed_domain_and_its_subdomains_are_dropped():
    assert reason("https://example.com/") == ("domain", "example.com in blocked domain example.com")
    assert reason("https://www.example.com/news/2020/01/story.html?ref=rss#top") == (
        "domain",
        "www.example.com in blocked domain example.com",
    )
    assert reason("http://a.b.example.com")[1] == "a.b.example.com in blocked domain example.com"
    assert reason("https://spam.example.net/offer")[1].endswith("domain spam.example.net")
    # Only the listed subdomain: its parent is another site.
    assert reason("https://example.net/") is None


def test_ports_userinfo_case_and_a_trailing_dot_do_not_matter():
    for url in (
        "http://example.com:8080/path",
        "https://user:secret@www.example.com/",
        "HTTPS://WWW.EXAMPLE.COM/Index.html",
        "https://example.com./",
        "example.com/page",  # no scheme
    ):
        assert reason(url) is not None, url
    assert reason("https://blog.SPAM.example.net:443/")[1] == (
        "blog.spam.example.net in blocked domain spam.example.net"
    )


def test_lookalikes_are_kept():
    for url in (
        "https://notexample.com/",
        "https://example.com.evil.net/",
        "https://myexample.com/example.com",
        "https://example.co/",
        "https://en.wikipedia.org/wiki/Example.com",
        "https://other.org/?next=https://example.com/",
    ):
        assert reason(url) is None, url


def test_internationalized_domains_match_in_either_form():
    assert reason("https://xn--bcher-kva.example/") is not None
    assert reason("https://Bücher.example/katalog")[1] == (
        "xn--bcher-kva.example in blocked domain xn--bcher-kva.example"
    )
    punycode_listed = UrlBlocklistConfig(domains=["XN--BCHER-KVA.example"]).build()
    assert not punycode_listed({"text": "", "url": "https://shop.bücher.example/"}).keep
    assert punycode_listed({"text": "", "url": "https://bucher.example/"}).keep


def test_documents_without_a_url_are_kept():
    assert BLOCK({"text": "Some text."}).keep
    assert BLOCK({"text": "Some text.", "url": None}).keep
    assert BLOCK({"text": "Some text.", "url": ""}).keep
    assert BLOCK({"text": "Some text.", "url": "http://[::1"}).keep  # not a URL at all


def test_a_domains_file_with_comments(tmp_path):
    listing = tmp_path / "blocked.txt"
    listing.write_text(
        "# link farms, found 2024-03\n"
        "linkfarm.example.org\n"
        "\n"
        "  *.ads.example.net   # and everything under it\n"
        "#commented-out.example\n",
        encoding="utf-8",
    )
    assert read_domains(listing.read_text().splitlines()) == [
        "linkfarm.example.org",
        "*.ads.example.net",
    ]
    block = UrlBlocklistConfig(domains=["example.com"], domains_file=str(listing)).build()
    dropped = [
        url
        for url in (
            "https://linkfarm.example.org/page/1",
            "https://cdn.ads.example.net/x.js",
            "https://ads.example.net/",
            "https://commented-out.example/",
            "https://example.com/",
            "https://example.org/",
        )
        if not block({"text": "", "url": url}).keep
    ]
    assert dropped == [
        "https://linkfarm.example.org/page/1",
        "https://cdn.ads.example.net/x.js",
        "https://ads.example.net/",
        "https://example.com/",
    ]


def test_a_blocklist_needs_domains():
    with pytest.raises(ValueError, match="give `domains`, a `domains_file`, or both"):
        UrlBlocklistConfig()


@pytest.mark.integration
def test_a_recipe_blocklist_drops_documents_in_the_quality_stage(tmp_path, lid_model_path):
    from pipelines.recipe import load_recipe
    from pipelines.stages import STAGE_CLASSES, StageContext, run_stage
    from pipelines.store import match_files

    text = "The committee met on Tuesday and agreed on the budget for the coming year."
    pages = {
        "kept": "https://www.example.org/minutes",
        "farm": "https://linkfarm.example.com/minutes",
        "lookalike": "https://notexample.com/minutes",
        "no-url": None,
    }
    (tmp_path / "pages.jsonl").write_text(
        "".join(json.dumps({"id": i, "url": url, "text": text}) + "\n" for i, url in pages.items())
    )
    (tmp_path / "blocked.txt").write_text("# link farms\nexample.com\n")
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(
        yaml.safe_dump(
            {
                "name": "blocklist",
                "workdir": "work",
                "sources": {
                    "web": {
                        "format": "jsonl",
                        "inputs": ["pages.jsonl"],
                        "weight": 1,
                        "filters": [{"name": "url_blocklist", "domains_file": "blocked.txt"}],
                    }
                },
                "mixture": {"total_tokens": 1000},
            }
        )
    )
    recipe = load_recipe(recipe_path)
    assert recipe.sources["web"].filters[0].domains_file == str(tmp_path / "blocked.txt")
    ctx = StageContext.from_recipe(recipe)
    for stage in ("extract", "langid", "quality"):
        run_stage(STAGE_CLASSES[stage](), ctx, ["web"])

    manifest = ctx.store.read_manifest("quality", "web")
    assert manifest["counts"] == {"input": 4, "kept": 3, "rejected": 1}
    assert manifest["rejected_by_reason"] == {"quality:url_blocklist.domain": 1}
    (reject,) = [r for p in match_files(ctx.store.rejects("quality", "web")) for r in _rows(p)]
    assert reject["url"] == pages["farm"]
    assert reject["detail"] == "linkfarm.example.com in blocked domain example.com"
    kept = {r["url"] for p in match_files(ctx.store.parts("quality", "web")) for r in _rows(p)}
    assert kept == {pages["kept"], pages["lookalike"], None}


def _rows(path):
    return pq.read_table(path).to_pylist()
