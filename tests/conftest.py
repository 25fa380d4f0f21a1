"""Shared test fixtures: paths, the real lid.176 model, the sample recipe in a temp workdir."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
RECIPES = ROOT / "recipes"
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """Real public samples of each corpus format; tests skip when ../shared is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not present")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def lid_model_path() -> str:
    from pipelines.lid_model import fetch_lid_model

    return str(fetch_lid_model())


def write_recipe(directory: Path, **overrides) -> Path:
    """The sample recipe with absolute input paths, a workdir in `directory`, and overrides."""
    data = yaml.safe_load((RECIPES / "sample.yaml").read_text())
    for source in data["sources"].values():
        source["inputs"] = [str((RECIPES / p).resolve()) for p in source["inputs"]]
        for item in source.get("filters", []):
            for key in ("model", "tokenizer"):
                if isinstance(item, dict) and key in item:
                    item[key] = str((RECIPES / item[key]).resolve())
    data["workdir"] = str(directory / "work")
    for key, value in overrides.items():
        data[key] = value
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def sample_recipe(tmp_path: Path, lid_model_path: str) -> Path:
    return write_recipe(tmp_path)


@pytest.fixture(scope="session")
def built_sample(tmp_path_factory, lid_model_path: str) -> Path:
    """The sample recipe built once through every stage with real Beam (no Prefect)."""
    from flows.recipe import load_recipe
    from pipelines.registry import STAGES
    from pipelines.stages import STAGE_CLASSES, StageContext, run_stage

    directory = tmp_path_factory.mktemp("built")
    path = write_recipe(directory)
    recipe = load_recipe(path)
    ctx = StageContext.from_recipe(recipe)
    for stage in STAGES:
        run_stage(STAGE_CLASSES[stage](), ctx, list(recipe.sources))
    return path


def mix_shards(workdir: str) -> str:
    """The folder of the committed mix version of a workdir."""
    from pipelines.shards import shards_dir

    return shards_dir(os.path.join(workdir, "mix", "_all"))[0]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prefect_api() -> str:
    """A real Prefect API (the test harness's local server) for one test module; its URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    import flows  # noqa: F401  (sets the start-up timeout before Prefect is imported)

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


def stage_subflows(client, flow_run_id) -> dict[str, object]:
    """The stage subflow runs of a build or rerun-stage run, by flow (stage) name."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
        )
    )
    return {client.read_flow(run.flow_id).name: run for run in runs}


os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
