"""The real fetch code against a local mirror on 127.0.0.1 that fails the ways servers do."""

import gzip
import hashlib
import json

import pytest

from flows.recipe import load_recipe
from pipelines.fetch import Expected, FetchError, cache_path, crawl_inputs, fetch, parse_checksums
from pipelines.recipe import CrawlConfig, FetchConfig
from pipelines.stages import STAGE_CLASSES, StageContext, run_stage
from tests.conftest import SAMPLES, write_recipe
from tests.support.mirror import Mirror, lay_out

CONFIG = FetchConfig(retries=4, backoff_s=0.01, timeout_s=10)
PAYLOAD = bytes(range(256)) * 4000  # 1 MB


@pytest.fixture
def mirror(tmp_path):
    root = tmp_path / "site"
    lay_out(root, {"data/file.bin": PAYLOAD})
    with Mirror(root) as m:
        yield m


def test_plain_download_is_cached(mirror, tmp_path):
    cache = str(tmp_path / "cache")
    path = fetch(mirror.url + "data/file.bin", cache, CONFIG)
    assert open(path, "rb").read() == PAYLOAD
    assert path == cache_path(cache, mirror.url + "data/file.bin")
    record = json.loads(open(path + ".done").read())
    assert record["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    fetch(mirror.url + "data/file.bin", cache, CONFIG)
    assert len(mirror.requests_for("/data/file.bin")) == 1  # the rerun downloaded nothing


def test_503s_are_retried_with_backoff(mirror, tmp_path):
    mirror.fail_first["/data/file.bin"] = 3
    sleeps = []
    path = fetch(mirror.url + "data/file.bin", str(tmp_path), CONFIG, sleep=sleeps.append)
    assert open(path, "rb").read() == PAYLOAD
    assert len(mirror.requests_for("/data/file.bin")) == 4
    assert sleeps == [0.01, 0.02, 0.04]  # doubling


def test_reset_mid_body_resumes_with_a_range(mirror, tmp_path):
    mirror.reset_after["/data/file.bin"] = 300_000
    path = fetch(mirror.url + "data/file.bin", str(tmp_path), CONFIG, sleep=lambda s: None)
    assert open(path, "rb").read() == PAYLOAD
    ranges = mirror.requests_for("/data/file.bin")
    assert ranges[0] is None and ranges[-1] is not None and ranges[-1].startswith("bytes=")
    assert int(ranges[-1][6:].rstrip("-")) > 0


def test_truncated_body_is_detected_and_resumed(mirror, tmp_path):
    mirror.short_body["/data/file.bin"] = 123_456
    path = fetch(mirror.url + "data/file.bin", str(tmp_path), CONFIG, sleep=lambda s: None)
    assert open(path, "rb").read() == PAYLOAD
    assert mirror.requests_for("/data/file.bin")[-1] == "bytes=123456-"


def test_server_without_ranges_restarts_from_zero(mirror, tmp_path):
    mirror.short_body["/data/file.bin"] = 1000
    mirror.no_range.add("/data/file.bin")
    path = fetch(mirror.url + "data/file.bin", str(tmp_path), CONFIG, sleep=lambda s: None)
    assert open(path, "rb").read() == PAYLOAD


def test_404_is_final_and_not_retried(mirror, tmp_path):
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(mirror.url + "data/missing.bin", str(tmp_path), CONFIG, sleep=lambda s: None)
    assert len(mirror.requests_for("/data/missing.bin")) == 1


def test_retries_run_out(mirror, tmp_path):
    mirror.fail_first["/data/file.bin"] = 100
    with pytest.raises(FetchError, match="gave up after 5 attempts"):
        fetch(mirror.url + "data/file.bin", str(tmp_path), CONFIG, sleep=lambda s: None)


def test_checksums_are_verified(mirror, tmp_path):
    good = hashlib.md5(PAYLOAD).hexdigest()
    sums = parse_checksums(f"{good}  file.bin\n{'0' * 40}  other.xml.bz2\n")
    assert sums == {"file.bin": ("md5", good), "other.xml.bz2": ("sha1", "0" * 40)}
    fetch(
        mirror.url + "data/file.bin", str(tmp_path / "a"), CONFIG, Expected(digest=sums["file.bin"])
    )
    with pytest.raises(FetchError, match="does not match the published"):
        fetch(
            mirror.url + "data/file.bin",
            str(tmp_path / "b"),
            CONFIG,
            Expected(digest=("sha256", "ab" * 32)),
        )
    with pytest.raises(FetchError, match="1024000 bytes, expected 5$"):
        fetch(mirror.url + "data/file.bin", str(tmp_path / "c"), CONFIG, Expected(size=5))


def commoncrawl_site(root):
    """A mirror laid out like data.commoncrawl.org for one crawl with three WET files."""
    wet = next((SAMPLES / "commoncrawl").glob("*.wet.gz")).read_bytes()
    segment = "crawl-data/CC-MAIN-2020-05/segments/1579250589560.16/wet"
    names = [
        f"{segment}/CC-MAIN-20200117123339-20200117151339-0000{i}.warc.wet.gz" for i in range(3)
    ]
    listing = gzip.compress(("\n".join(names) + "\n").encode())
    lay_out(
        root, {"crawl-data/CC-MAIN-2020-05/wet.paths.gz": listing, **{name: wet for name in names}}
    )
    return names


def test_crawl_id_selects_files_from_the_paths_listing(tmp_path):
    names = commoncrawl_site(tmp_path / "site")
    with Mirror(tmp_path / "site") as mirror:
        crawl = CrawlConfig(id="CC-MAIN-2020-05", base_url=mirror.url, max_files=2)
        urls = crawl_inputs(crawl, str(tmp_path / "cache"), CONFIG)
        assert urls == [mirror.url + n for n in names[:2]]
        sampled = crawl_inputs(
            crawl.model_copy(update={"max_files": None, "fraction": 0.5}),
            str(tmp_path / "cache"),
            CONFIG,
        )
        assert set(sampled) <= {mirror.url + n for n in names}
        again = crawl_inputs(
            crawl.model_copy(update={"max_files": None, "fraction": 0.5}),
            str(tmp_path / "cache"),
            CONFIG,
        )
        assert sampled == again


def test_extract_reads_a_crawl_through_a_flaky_mirror(tmp_path, lid_model_path):
    names = commoncrawl_site(tmp_path / "site")
    with Mirror(tmp_path / "site") as mirror:
        mirror.fail_first["/" + names[0]] = 2
        mirror.reset_after["/" + names[1]] = 5000
        recipe_path = write_recipe(tmp_path, fetch={"retries": 3, "backoff_s": 0.01})
        recipe = load_recipe(recipe_path)
        spec = recipe.sources["commoncrawl"]
        spec.inputs = [mirror.url + "nowhere/missing.warc.wet.gz"]
        spec.crawl = CrawlConfig(id="CC-MAIN-2020-05", base_url=mirror.url, max_files=2)
        ctx = StageContext.from_recipe(recipe)
        (result,) = run_stage(STAGE_CLASSES["extract"](), ctx, ["commoncrawl"])
        counts = result.manifest["counts"]
        # Two crawl files of 136 pages each; the missing URL is one recorded failure.
        assert counts["kept"] == 272
        assert result.manifest["rejected_by_reason"] == {"extract:fetch_failed": 1}
        assert "HTTP 404" in result.manifest["file_problems"][0]["detail"]
        # A second build of the stage downloads nothing again.
        before = len(mirror.requests)
        run_stage(STAGE_CLASSES["extract"](), ctx, ["commoncrawl"], force=True)
        assert [p for p, _ in mirror.requests[before:]] == ["/nowhere/missing.warc.wet.gz"]
