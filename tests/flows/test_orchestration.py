"""Retries, time limits, concurrency limits, cached states and clear failure messages of the
stage flows, against a real Prefect API (the test harness's local server)."""

from __future__ import annotations

import json
import re
import time

import pytest

from pipelines.errors import InputError
from pipelines.registry import STAGES
from tests.conftest import stage_subflows, write_recipe

pytestmark = [pytest.mark.integration]


def extract_flow(path, **kwargs):
    from flows.build import STAGE_FLOWS

    return STAGE_FLOWS["extract"](str(path), ["c4", "books"], return_state=True, **kwargs)


@pytest.fixture
def flaky_stage(monkeypatch):
    """`run_stage` as the stage task calls it, failing as told before running for real."""
    import flows.build

    calls: list[str] = []
    failures: list[BaseException | float] = []

    def run_stage(stage, ctx, sources, force=False):
        calls.append(stage.name)
        if failures:
            failure = failures.pop(0)
            if isinstance(failure, float):
                time.sleep(failure)
            else:
                raise failure
        return real(stage, ctx, sources, force=force)

    real = flows.build.run_stage
    monkeypatch.setattr(flows.build, "run_stage", run_stage)
    return calls, failures


def test_a_failed_attempt_is_retried_with_backoff(
    prefect_api, tmp_path, lid_model_path, flaky_stage
):
    calls, failures = flaky_stage
    path = write_recipe(tmp_path, orchestration={"retries": {"extract": 2}, "retry_delay_s": 0.5})
    failures.append(ConnectionResetError("connection reset by peer"))
    started = time.monotonic()
    state = extract_flow(path)
    assert state.is_completed(), state.message
    assert calls == ["extract", "extract"]
    assert time.monotonic() - started >= 0.4  # the backoff before the second attempt
    assert {r["source"]: r["status"] for r in state.result()} == {"c4": "ran", "books": "ran"}


def test_a_user_error_is_not_retried_and_is_one_line(
    prefect_api, tmp_path, lid_model_path, flaky_stage
):
    calls, failures = flaky_stage
    path = write_recipe(tmp_path, orchestration={"retries": {"extract": 3}, "retry_delay_s": 0})
    failures.append(InputError("sources.c4.inputs[0]: no file matches /data/c4-*.json.gz"))
    state = extract_flow(path)
    assert state.is_failed()
    assert state.message == "sources.c4.inputs[0]: no file matches /data/c4-*.json.gz"
    assert calls == ["extract"]


def test_an_unexpected_error_ends_in_its_last_line(
    prefect_api, tmp_path, lid_model_path, flaky_stage
):
    calls, failures = flaky_stage
    path = write_recipe(tmp_path, orchestration={"retries": {}})
    failures.append(RuntimeError("Traceback (most recent call last):\n  ...\nMemoryError: worker"))
    state = extract_flow(path)
    assert state.is_failed()
    assert state.message == "extract failed: RuntimeError: MemoryError: worker"
    assert calls == ["extract"]


def test_a_stage_past_its_time_limit_fails_as_timed_out(
    prefect_api, tmp_path, lid_model_path, flaky_stage
):
    calls, failures = flaky_stage
    path = write_recipe(tmp_path, orchestration={"retries": {}, "timeout_s": {"extract": 1}})
    failures.append(5.0)
    started = time.monotonic()
    state = extract_flow(path)
    assert time.monotonic() - started < 5
    assert state.is_failed()
    assert state.name == "TimedOut"
    assert state.message == "extract took longer than 1 s (orchestration.timeout_s.extract)"


def test_heavy_stages_hold_a_global_concurrency_slot(prefect_api, tmp_path, lid_model_path):
    from prefect.client.orchestration import get_client

    path = write_recipe(tmp_path, orchestration={"concurrency": {"extract": 3}})
    assert extract_flow(path).is_completed()
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("llama-recipe-extract")
        assert limit.limit == 3
        assert limit.active_slots == 0  # released when the stage ended


def test_a_build_with_nothing_to_do_shows_every_stage_cached(prefect_api, tmp_path, lid_model_path):
    from prefect.artifacts import Artifact
    from prefect.client.orchestration import get_client

    from flows.build import build

    path = write_recipe(tmp_path)
    assert build(str(path), return_state=True).is_completed()
    again = build(str(path), return_state=True)
    assert again.message == "everything was up to date"
    with get_client(sync_client=True) as client:
        runs = stage_subflows(client, again.state_details.flow_run_id)
        assert sorted(runs) == sorted(STAGES)
        assert {r.state.name for r in runs.values()} == {"Cached"}
    # Builds take turns on a workdir through its lease, given back when a build ends.
    assert not (tmp_path / "work" / "_LEASE.json").exists()
    rows = Artifact.get("sample-dedup").data
    assert '"status": "cached"' in rows and '"status": "ran"' not in rows


def test_train_flow_without_shards_says_so(prefect_api, tmp_path):
    from flows.training import train_flow

    path = write_recipe(tmp_path)
    state = train_flow(str(path), return_state=True)
    assert state.is_failed()
    assert state.message == f"{tmp_path}/work/mix/_all: no mix shards yet; build the recipe first"
    assert train_flow(str(path), model="huge", return_state=True).is_failed()


def test_train_flow_runs_torchrun_with_the_recipes_processes(prefect_api, built_sample, tmp_path):
    """`train.nproc_per_node: 2`: the flow starts torchrun (two CPU processes, gloo, FSDP2)
    and follows the metrics.jsonl rank 0 writes for its progress and loss table."""
    import yaml
    from prefect.artifacts import Artifact

    from flows.training import train_flow

    data = yaml.safe_load(built_sample.read_text())
    data["name"] = "two-processes"
    data["train"] = {
        "model": "tiny",
        "batch_size": 8,
        "lr": 0.003,
        "warmup_steps": 1,
        "max_steps": 4,
        "log_every": 1,
        "checkpoint_dir": str(tmp_path / "checkpoints"),
        "nproc_per_node": 2,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    state = train_flow(str(path), return_state=True)
    assert state.is_completed(), state.message
    assert state.message.endswith(f"at step 4; checkpoint in {tmp_path / 'checkpoints'}")
    losses = Artifact.get("two-processes-training-loss").data
    assert [row["step"] for row in json.loads(losses)] == [1, 2, 3, 4]
    # The sample holds documents out: their loss per source after the last step.
    assert re.match(
        r"loss [\d.]+ -> [\d.]+ over steps 1-4; validation loss [\d.]+ at", state.message
    )
    (validation,) = json.loads(Artifact.get("two-processes-validation-loss").data)
    assert validation.pop("step") == 4 and set(validation) == {"all sources", *data["sources"]}
    assert all(0 < loss < 7 for loss in validation.values())
    assert Artifact.get("two-processes-training-progress").data == 100.0
    assert (tmp_path / "checkpoints" / "checkpoint.pt").exists()
    # A mistake inside the launched command comes back as its one line.
    failed = train_flow(str(path), model="huge", nproc_per_node=2, return_state=True)
    assert failed.is_failed()
    assert failed.message.startswith("unknown model 'huge'")
