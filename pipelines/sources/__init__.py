"""One reader per corpus format: a file in, Documents (or recorded rejections) out."""

from pipelines.sources import arxiv, books, c4, commoncrawl, github, jsonl, mediawiki, stackexchange
from pipelines.sources.base import READERS, Partial, Rejected, read_file

ASSEMBLERS = {"stackexchange": stackexchange.assemble_thread}

__all__ = [
    "ASSEMBLERS",
    "READERS",
    "Partial",
    "Rejected",
    "read_file",
    "arxiv",
    "books",
    "c4",
    "commoncrawl",
    "github",
    "jsonl",
    "mediawiki",
    "stackexchange",
]
