"""resiliparse against trafilatura for the `warc` format's HTML-to-main-text step, on the same
real Common Crawl pages in the same run.

    .venv/bin/pip install -e '.[bench]'   # trafilatura, for this comparison only
    .venv/bin/python benchmarks/html_extractors.py [--repeat 5]

Speed: MB of HTML per second on one core. Quality, without a gold standard: how many pages
yield some text, how much text, the share of output lines shorter than five words (menus,
buttons and footers look like that), leftover script/markup, and how much the two agree
(word-trigram Jaccard per page).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from warcio.archiveiterator import ArchiveIterator

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "commoncrawl"
_MARKUP_RE = re.compile(r"<[a-zA-Z/][^>]*>|function\s*\(|\{\s*var\s")


def html_pages() -> list[str]:
    pages = []
    for path in sorted(FIXTURES.glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type != "response" or not record.http_headers:
                    continue
                if "html" not in (record.http_headers.get_header("Content-Type") or ""):
                    continue
                body = record.content_stream().read()
                pages.append(bytes_to_str(body, detect_encoding(body)))
    return pages


def with_resiliparse(html: str) -> str:
    return extract_plain_text(html, main_content=True)


def with_trafilatura(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, favor_precision=True) or ""


def trigrams(text: str) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pages = html_pages()
    size_mb = sum(len(p.encode()) for p in pages) / 1e6
    extractors = {"resiliparse": with_resiliparse}
    try:
        import trafilatura  # noqa: F401

        extractors["trafilatura"] = with_trafilatura
    except ImportError:
        print("trafilatura is not installed (pip install -e '.[bench]'): resiliparse only")
    outputs = {}
    print(f"{len(pages)} real pages, {size_mb:.2f} MB of HTML")
    print(
        f"{'extractor':<12} {'MB/s':>7} {'pages>200ch':>11} {'text kB':>8} "
        f"{'short lines':>11} {'markup':>6}"
    )
    speeds = {}
    for name, extract in extractors.items():
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            texts = [extract(p) for p in pages]
            times.append(time.perf_counter() - started)
        outputs[name] = texts
        lines = [line for t in texts for line in t.splitlines() if line.strip()]
        short = sum(len(line.strip()) < 30 for line in lines) / max(len(lines), 1)
        speeds[name] = size_mb / statistics.median(times)
        print(
            f"{name:<12} {speeds[name]:>7.2f} {sum(len(t) > 200 for t in texts):>11} "
            f"{sum(len(t) for t in texts) / 1e3:>8.1f} {short:>11.2f} "
            f"{sum(bool(_MARKUP_RE.search(t)) for t in texts):>6}"
        )
    if len(outputs) == 2:
        a, b = outputs["resiliparse"], outputs["trafilatura"]
        agreement = [
            len(trigrams(x) & trigrams(y)) / max(len(trigrams(x) | trigrams(y)), 1)
            for x, y in zip(a, b, strict=True)
            if x or y
        ]
        ratio = speeds["resiliparse"] / speeds["trafilatura"]
        print(
            f"speed ratio resiliparse/trafilatura: {ratio:.1f}x; "
            f"mean trigram agreement per page: {statistics.mean(agreement):.2f}"
        )


if __name__ == "__main__":
    main()
