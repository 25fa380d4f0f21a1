"""A short coverage-guided fuzzing run of each of the ten readers from their real seeds (the
long runs are `make fuzz`): no input may crash a reader, hang it, or give records the extract
stage could not store."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.fuzz.targets import FORMATS, check, encode, seed_corpus, temporary_workdir

pytest.importorskip("atheris")
SECONDS = 4


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_seed_reads_cleanly(name, tmp_path):
    fmt = FORMATS[name]
    assert seed_corpus(fmt, str(tmp_path / "seeds")) >= 2
    workdir = temporary_workdir()
    for seed in sorted((tmp_path / "seeds").iterdir()):
        assert check(fmt, encode(fmt, seed.read_bytes()), workdir) > 0


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_a_short_fuzzing_run_finds_nothing(name, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            name,
            "--seconds",
            str(SECONDS),
            "--findings",
            str(tmp_path / "findings"),
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=300,
    )
    report = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert "Done" in report and not list((tmp_path / "findings").rglob("crash-*")), report
