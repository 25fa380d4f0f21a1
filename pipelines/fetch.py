"""Downloading inputs: streamed, retried with backoff, resumed with HTTP ranges, verified, and
cached in the workdir so that a rerun downloads nothing twice.

The cache lives at `<workdir>/fetch/<host>/<path>`. A download is complete when its
`.done` marker exists (size, sha256, URL); a partial download stays as `.part` and the next
attempt resumes it where the server supports ranges.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.document import unit_hash
from pipelines.errors import InputError
from pipelines.recipe import CrawlConfig, FetchConfig, is_uri

CHUNK_BYTES = 1 << 20
# Network reads are small so that a connection lost mid-body loses at most this much.
READ_BYTES = 1 << 16
_DIGESTS = {32: "md5", 40: "sha1", 64: "sha256"}  # by hex length, as checksum files list them


class FetchError(InputError):
    """A download failed for good: a 4xx answer, retries used up, or a checksum mismatch."""


class _Retry(Exception):
    """A transient failure: try again (and resume) after a backoff."""


def is_remote_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def cache_path(cache_root: str, url: str) -> str:
    """Where a URL is cached: the host and the URL path below the cache root."""
    parts = urllib.parse.urlsplit(url)
    relative = parts.path.lstrip("/") or "index"
    if parts.query:
        relative += "_" + hashlib.sha256(parts.query.encode()).hexdigest()[:12]
    return FileSystems.join(cache_root, parts.netloc.replace(":", "_"), *relative.split("/"))


@dataclass(frozen=True)
class Expected:
    """What a download must match, where the source publishes it."""

    size: int | None = None
    digest: tuple[str, str] | None = None  # (algorithm, hex)


def _total_size(response: http.client.HTTPResponse, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def _download_once(url: str, part: str, timeout_s: float) -> None:
    """One attempt: resume `part` if the server honours the range, else start over."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    headers = {"User-Agent": "llama-recipe", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part is already whole (or bigger): start over
            os.remove(part)
            raise _Retry(f"HTTP 416 resuming at {offset}") from None
        if exc.code >= 500 or exc.code == 429:
            raise _Retry(f"HTTP {exc.code}") from None
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _Retry(f"{type(exc).__name__}: {exc}") from None
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the range: the body is the whole file
        total = _total_size(response, offset)
        try:
            with open(part, "ab" if offset else "wb") as out:
                while chunk := response.read(READ_BYTES):
                    out.write(chunk)
        except (TimeoutError, http.client.IncompleteRead, ConnectionError, OSError) as exc:
            raise _Retry(f"connection lost after {os.path.getsize(part)} bytes ({exc})") from None
    size = os.path.getsize(part)
    if total is not None and size < total:
        raise _Retry(f"body ended at {size} of {total} bytes")
    if total is not None and size > total:
        os.remove(part)
        raise _Retry(f"body is {size} bytes, more than the announced {total}")


def _digest(path: str, algorithm: str) -> str:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


def download_to_local(
    url: str,
    local: str,
    config: FetchConfig,
    expected: Expected = Expected(),
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Download `url` to the local path `local` (resuming `local.part`); return its record."""
    os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
    part = local + ".part"
    last_error = ""
    for attempt in range(config.retries + 1):
        try:
            _download_once(url, part, config.timeout_s)
            break
        except _Retry as exc:
            last_error = str(exc)
            if attempt < config.retries:
                sleep(min(config.backoff_s * 2**attempt, config.max_backoff_s))
    else:
        raise FetchError(f"{url}: gave up after {config.retries + 1} attempts ({last_error})")
    size = os.path.getsize(part)
    if expected.size is not None and size != expected.size:
        os.remove(part)
        raise FetchError(f"{url}: {size} bytes, expected {expected.size}")
    sha256 = _digest(part, "sha256")
    if expected.digest is not None:
        algorithm, want = expected.digest
        got = sha256 if algorithm == "sha256" else _digest(part, algorithm)
        if got != want.lower():
            os.remove(part)
            raise FetchError(f"{url}: {algorithm} {got} does not match the published {want}")
    os.replace(part, local)
    return {"url": url, "size": size, "sha256": sha256}


def fetch(
    url: str,
    cache_root: str,
    config: FetchConfig,
    expected: Expected = Expected(),
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The cached copy of `url` (a path or URI under `cache_root`), downloading it if needed."""
    target = cache_path(cache_root, url)
    marker = target + ".done"
    if FileSystems.exists(marker) and FileSystems.exists(target):
        return target
    if not is_uri(cache_root) or cache_root.startswith("file://"):
        record = download_to_local(url, target.removeprefix("file://"), config, expected, sleep)
    else:
        # An object-store workdir: download locally, then copy the finished file up.
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "download")
            record = download_to_local(url, local, config, expected, sleep)
            with open(local, "rb") as src, FileSystems.create(target) as dst:
                shutil.copyfileobj(src, dst, CHUNK_BYTES)
    with FileSystems.create(marker) as fh:
        fh.write(json.dumps(record).encode())
    return target


def parse_checksums(text: str) -> dict[str, tuple[str, str]]:
    """`HEX  NAME` lines (md5sums/sha1sums/sha256sums files) -> {name: (algorithm, hex)}."""
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) in _DIGESTS:
            name = parts[-1].lstrip("*").rsplit("/", 1)[-1]
            sums[name] = (_DIGESTS[len(parts[0])], parts[0].lower())
    return sums


def crawl_inputs(crawl: CrawlConfig, cache_root: str, config: FetchConfig) -> list[str]:
    """The file URLs a CommonCrawl crawl spec selects, from the crawl's `<kind>.paths.gz`."""
    base = crawl.base_url.rstrip("/") + "/"
    listing_url = f"{base}crawl-data/{crawl.id}/{crawl.kind}.paths.gz"
    listing = fetch(listing_url, cache_root, config)
    with FileSystems.open(listing, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        paths = [p.strip() for p in gzip.decompress(fh.read()).decode().splitlines() if p.strip()]
    if crawl.fraction is not None:
        paths = [p for p in paths if unit_hash(crawl.seed, "crawl", p) < crawl.fraction]
    if crawl.max_files is not None:
        paths = paths[: crawl.max_files]
    return [base + p for p in paths]
