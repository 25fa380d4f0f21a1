"""Build texlive-papers.tar: real LaTeX documents from Debian's TeX Live documentation
packages, packed as arXiv packs its bulk source archives (a tar of `<id>.gz` members, each a
gzipped tar of one document's .tex files), so that the tests read them through the arXiv
reader exactly as a real dump.

    apt-get download texlive-publishers-doc texlive-latex-extra-doc texlive-pictures-doc \
        texlive-pstricks-doc texlive-science-doc texlive-latex-recommended-doc \
        texlive-humanities-doc
    for f in *.deb; do dpkg-deb -x "$f" "extracted/${f%%_*}"; done
    gunzip -r extracted   # Debian compresses most documentation files
    python build_corpus.py extracted documents.txt texlive-papers.tar

`documents.txt` lists the documents: package, then the main file's path under
usr/share/doc/texlive-doc (a document is its main file and every .tex file in its folder).
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import tarfile

SUFFIXES = (".tex", ".ltx", ".latex")
BASE = "usr/share/doc/texlive-doc"


def document_tar(root: str) -> bytes:
    """One document's folder as a tar of its .tex files (sorted, fixed metadata)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for folder, dirs, names in sorted(os.walk(root)):
            dirs.sort()
            for name in sorted(names):
                path = os.path.join(folder, name)
                if name.endswith(SUFFIXES) and not name.startswith("._") and os.path.isfile(path):
                    data = open(path, "rb").read()
                    info = tarfile.TarInfo(os.path.relpath(path, root))
                    info.size, info.mtime, info.mode = len(data), 0, 0o644
                    tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def main(extracted: str, listing: str, out: str) -> None:
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as bulk:
        for number, line in enumerate(open(listing), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            package, main_file = line.split()[:2]
            root = os.path.dirname(os.path.join(extracted, package, BASE, main_file))
            data = gzip.compress(document_tar(root), mtime=0)
            info = tarfile.TarInfo(f"texlive/texlive.{number:05d}.gz")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            bulk.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main(*sys.argv[1:4])
