"""The environment is checked before the first stage: one line, exit 2, nothing retried."""

from __future__ import annotations

import time

import pytest
import yaml

from flows.cli import main
from flows.recipe import load_recipe
from pipelines.errors import EnvironmentProblem
from pipelines.preflight import check_environment, check_free_space
from pipelines.registry import STAGES
from tests.conftest import write_recipe


def _build(path, capsys) -> tuple[int, str, float]:
    started = time.monotonic()
    code = main(["build", str(path)])
    return code, capsys.readouterr().err.strip(), time.monotonic() - started


def test_an_unwritable_workdir_is_one_line_before_anything_starts(tmp_path, capsys):
    path = write_recipe(tmp_path, workdir="/proc/llama-recipe/work")
    code, err, seconds = _build(path, capsys)
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("llama-recipe: error: workdir /proc/llama-recipe/work: not writable")
    assert seconds < 30  # it took a minute of retries and 12 tracebacks


def test_a_missing_model_file_is_named_with_its_key(tmp_path, capsys):
    data = yaml.safe_load(write_recipe(tmp_path).read_text())
    data["sources"]["commoncrawl"]["filters"][0]["model"] = str(tmp_path / "gone.arpa")
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(data))
    code, err, _ = _build(tmp_path / "recipe.yaml", capsys)
    assert code == 2
    assert f"sources.commoncrawl.filters[0].model: {tmp_path / 'gone.arpa'} not found" in err


def test_the_language_model_must_be_there(tmp_path, capsys):
    path = write_recipe(tmp_path, langid={"model": str(tmp_path / "lid.bin")})
    code, err, _ = _build(path, capsys)
    assert code == 2 and "language-ID model not found (langid.model)" in err


def test_free_space_is_checked_against_the_next_stage(tmp_path, monkeypatch, lid_model_path):
    recipe = load_recipe(write_recipe(tmp_path))
    check_environment(recipe, list(STAGES), list(recipe.sources))  # plenty of room here

    class Tiny:
        free = 1000

    monkeypatch.setattr("pipelines.preflight.shutil.disk_usage", lambda path: Tiny)
    with pytest.raises(EnvironmentProblem, match=r"1 MB free|0 MB free"):
        check_free_space(recipe, "extract", list(recipe.sources))


def test_a_prefect_api_that_does_not_answer_is_one_line(tmp_path, capsys, lid_model_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.conftest import free_port

    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{free_port()}/api"}):
        code, err, seconds = _build(write_recipe(tmp_path), capsys)
    assert code == 2 and err.count("\n") == 0
    assert "does not answer (PREFECT_API_URL)" in err and seconds < 30
