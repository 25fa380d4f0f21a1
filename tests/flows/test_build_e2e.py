"""The whole recipe through Prefect (a real local API server) and Beam, then training."""

import gzip
import os
import re
import subprocess
import sys

import pytest
import yaml

from flows.recipe import load_recipe
from pipelines.registry import STAGES
from tests.conftest import RECIPES, write_recipe

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def statuses(state):
    return {(r["stage"], r["source"]): r["status"] for r in state.result()}


def run_cli(*args, api_url=None):
    env = {**os.environ}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_build_through_prefect_then_train(prefect_api, tmp_path, lid_model_path):
    from flows.build import build
    from trainer.config import TrainSettings
    from trainer.train import train

    path = write_recipe(tmp_path)
    state = build(recipe_path=str(path), return_state=True)
    assert state.is_completed(), state.message
    first = statuses(state)
    assert set(first.values()) == {"ran"}
    assert {stage for stage, _ in first} == set(STAGES)

    recipe = load_recipe(path)
    # The shards train a model whose loss falls.
    history = train(
        os.path.join(recipe.workdir, "mix", "_all"),
        recipe.tokenizer.vocab_size,
        TrainSettings(max_steps=25, warmup_steps=5, lr=3e-3, batch_size=8),
        str(tmp_path / "ckpt"),
    )
    assert history[-1]["loss"] < history[0]["loss"] - 1.0
    assert os.path.exists(tmp_path / "ckpt" / "checkpoint.pt")

    # A second build skips everything.
    again = build(recipe_path=str(path), return_state=True)
    assert set(statuses(again).values()) == {"skipped"}

    # --force --stages dedup reruns dedup and what follows it, nothing before.
    forced = statuses(build(recipe_path=str(path), stages=["dedup"], force=True, return_state=True))
    for (stage, _), status in forced.items():
        expected = "ran" if STAGES.index(stage) >= STAGES.index("dedup") else None
        assert status == expected, (stage, status)
    assert {stage for stage, _ in forced} == set(STAGES[STAGES.index("dedup") :])


def test_status_and_train_commands(tmp_path, lid_model_path):
    path = write_recipe(
        tmp_path,
        train={
            "model": "tiny",
            "batch_size": 8,
            "lr": 0.003,
            "warmup_steps": 5,
            "max_steps": 15,
            "log_every": 5,
        },
    )
    built = run_cli("build", str(path))  # no PREFECT_API_URL: Prefect's ephemeral mode
    assert built.returncode == 0, built.stderr[-3000:]
    assert "documents per stage and source" in built.stdout
    assert re.search(r"commoncrawl\s+│\s+136\s+│\s+136\s+│\s+0", built.stdout)
    assert "actual %" in built.stdout
    status = run_cli("status", str(path))
    assert status.returncode == 0
    # CCNet's perplexity filter and the reference classifier, each drop counted by filter.
    assert re.search(
        # (the reasons column wraps at the terminal's width)
        r"quality\s+│\s+commoncrawl\s+│\s+127\s+│\s+15\s+│\s+112\s+│ "
        r"reference_classifier.score 59, perplexity.tail\s+(│\s+)*53",
        status.stdout,
    )
    assert re.search(r"train-classifier\s+│\s+\(all\).*held-out AUC 0\.9", status.stdout)
    trained = run_cli("train", str(path))
    assert trained.returncode == 0, trained.stderr[-3000:]
    first, last = map(
        float,
        re.search(r"loss: first step ([\d.]+) -> last step ([\d.]+)", trained.stdout).groups(),
    )
    assert last < first


def assert_one_line_error(result, *needles):
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [
        line for line in result.stderr.splitlines() if line.startswith("llama-recipe: error:")
    ]
    assert len(error_lines) == 1, result.stderr[-2000:]
    for needle in needles:
        assert needle in error_lines[0]


def test_typo_in_recipe_is_one_line(tmp_path):
    path = write_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["mixture"]["sed"] = data["mixture"].pop("seed")
    path.write_text(yaml.safe_dump(data))
    assert_one_line_error(run_cli("build", str(path)), str(path), "mixture.sed: unknown key")


def test_missing_input_is_one_line(tmp_path):
    path = write_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["sources"]["c4"]["inputs"] = [str(tmp_path / "missing" / "c4-*.json.gz")]
    path.write_text(yaml.safe_dump(data))
    assert_one_line_error(
        run_cli("build", str(path)),
        "sources.c4.inputs[0]",
        "no file matches",
        "missing/c4-*.json.gz",
    )


def test_corrupt_gzip_is_one_warning_and_the_build_goes_on(prefect_api, tmp_path, lid_model_path):
    bad = tmp_path / "in" / "c4-bad.json.gz"
    bad.parent.mkdir()
    good = gzip.compress(
        b"".join(b'{"text": "fine document %d", "url": "u%d"}\n' % (i, i) for i in range(20000))
    )
    bad.write_bytes(good[: len(good) // 2])  # truncated mid-stream
    path = write_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["sources"]["c4"]["inputs"] = [str(bad), str(RECIPES.parent / "samples/c4/*.json.gz")]
    path.write_text(yaml.safe_dump(data))
    result = run_cli(
        "build", str(path), "--stages", "extract", "--sources", "c4", api_url=prefect_api
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1
    assert "c4-bad.json.gz: gzip EOFError" in warnings[0]
    assert "extract:damaged_file" in warnings[0]
    manifest = load_recipe(path)
    from pipelines.store import StageStore

    extract = StageStore(manifest.workdir).read_manifest("extract", "c4")
    assert extract["rejected_by_reason"] == {"extract:damaged_file": 1}
    # The sample files and everything before the damage were read.
    assert extract["counts"]["kept"] > 42 + 1000
