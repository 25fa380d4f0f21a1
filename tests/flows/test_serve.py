"""`llama-recipe serve` against a real local Prefect server: deployments run from the API and
from the UI in headless Chromium; a build's new shards start training through the event."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.registry import STAGES
from tests.conftest import ROOT, free_port, stage_subflows, write_recipe

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TRAIN = {
    "model": "tiny",
    "batch_size": 8,
    "lr": 0.003,
    "warmup_steps": 2,
    "max_steps": 6,
    "log_every": 2,
}


@dataclass
class Served:
    ui_url: str
    api_url: str
    recipe: Path
    log: Path


@contextmanager
def background(
    command: list[str],
    log: Path,
    env: dict[str, str],
    cwd: Path = ROOT,
    stop: signal.Signals = signal.SIGTERM,
):
    """A long-running command in its own session, its output in `log`; stopped with `stop`
    (SIGTERM, as a service manager stops it), then whatever is left of its process group is
    killed."""
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(stop)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def served(tmp_path_factory, lid_model_path):
    """`llama-recipe serve` as `make serve` runs it: a fresh local server, then the deployments."""
    directory = tmp_path_factory.mktemp("served")
    recipe = write_recipe(directory, train=TRAIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(directory / "prefect")
    log = directory / "serve.log"
    port = free_port()
    command = [sys.executable, "-m", "flows.cli", "serve", str(recipe), "--port", str(port)]
    with background(command, log, env) as process:
        deadline = time.monotonic() + 240
        while "serving 11 deployments" not in log.read_text():
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        ui_url = re.search(r"Prefect UI: (\S+)", log.read_text()).group(1)
        assert ui_url == f"http://127.0.0.1:{port}"
        served = Served(ui_url, f"{ui_url}/api", recipe, log)
        with served_api(served) as client:
            while len(client.read_deployments()) < 10:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
        yield served
        # Ctrl-C at the terminal reaches the whole process group: serve stops the runner,
        # then its local server (it used to die first and leave serve hanging for minutes).
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert "All deployments have been paused!" in log.read_text()


@contextmanager
def served_api(served: Served):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: served.api_url}):
        with get_client(sync_client=True) as client:
            yield client


def train_runs(client, recipe_name: str = "sample") -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[recipe_name])),
        flow_filter=_flow_named("train"),
        sort=FlowRunSort.START_TIME_ASC,
    )


def _flow_named(name: str):
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    return FlowFilter(name=FlowFilterName(any_=[name]))


def wait_for_training(
    client, count: int, served: Served, timeout_s: float = 300, recipe_name: str = "sample"
):
    """The `count`-th run of train/<recipe>, once it is final (it is started by the event)."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = train_runs(client, recipe_name)
        if len(runs) >= count and runs[count - 1].state and runs[count - 1].state.is_final():
            return runs[count - 1]
        assert time.monotonic() < deadline, (
            f"{len(runs)} train runs after {timeout_s} s\n{served.log.read_text()[-3000:]}"
        )
        time.sleep(1)


def artifact_data(key: str):
    """The latest artifact's data (synchronously: the browser's event loop shares the thread)."""
    from prefect.artifacts import Artifact

    artifact = Artifact.get(key, _sync=True)
    assert artifact is not None, key
    return artifact.data


def table(key: str) -> list[dict]:
    return json.loads(artifact_data(key))


@pytest.fixture(scope="module")
def ui(served):
    """A page in headless Chromium (Debian's), or None where it is not installed."""
    chromium = shutil.which("chromium")
    if chromium is None:
        yield None
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            # As root in a container, offline: no sandbox, no background connections.
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def run_from_ui(page, served: Served, flow_name: str, deployment: str) -> str:
    """On the Deployments page, open `flow_name`'s deployment `deployment`, start it with Run,
    Quick run, Run, open the new run and wait until it shows Completed; its name."""
    from playwright.sync_api import expect

    page.goto(f"{served.ui_url}/deployments")
    expect(page.get_by_text("11 Deployments")).to_be_visible()
    link = page.get_by_role("link", name=deployment, exact=True)
    page.get_by_role("row").filter(has=link).filter(has_text=flow_name).get_by_role(
        "link", name=deployment, exact=True
    ).click()
    expect(page.get_by_text(flow_name, exact=True).first).to_be_visible()
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Quick run").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("recipe_path")).to_be_visible()
    dialog.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function("document.body.innerText.includes('scheduled to start now')")
    run_name = re.search(r"(\S+) scheduled to start now", page.inner_text("body")).group(1)

    page.reload()
    page.get_by_role("link", name=run_name, exact=True).first.click()
    expect(page.get_by_text(run_name, exact=True).first).to_be_visible()
    deadline = time.monotonic() + 600
    while not page.get_by_text("Completed", exact=True).first.is_visible():
        assert not page.get_by_text("Failed", exact=True).first.is_visible(), run_name
        assert time.monotonic() < deadline, served.log.read_text()[-3000:]
        page.wait_for_timeout(2000)
        page.reload()
    return run_name


def subflow_states_in_ui(page) -> dict[str, str]:
    """The run page's Subflow Runs tab: each stage's state as shown."""
    from playwright.sync_api import expect

    page.get_by_text("Subflow Runs", exact=True).click()
    expect(page.get_by_text(f"{len(STAGES)} Flow runs")).to_be_visible()
    deadline = time.monotonic() + 60
    while True:  # the list renders after its count
        lines = [line.strip() for line in page.inner_text("body").splitlines()]
        shown = {lines[i]: lines[i + 2] for i in range(len(lines) - 2) if lines[i] in STAGES}
        if len(shown) == len(STAGES) or time.monotonic() > deadline:
            # A run page redraws its live views for as long as it is open: most of a core
            # in software rendering, taken from the tests that run next.
            page.goto("about:blank")
            return shown
        page.wait_for_timeout(500)


def flow_run_named(client, name: str):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    (run,) = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
    )
    return run


def test_build_deployment_then_training_starts_by_itself(served, ui):
    """The build started from the UI (from the API where Chromium is missing) finishes and
    training starts by itself."""
    from prefect.deployments import run_deployment

    with served_api(served) as client:
        if ui is not None:
            run = flow_run_named(client, run_from_ui(ui, served, "build", "sample"))
            assert subflow_states_in_ui(ui) == {stage: "Completed" for stage in STAGES}
        else:
            run = run_deployment("build/sample", timeout=900, poll_interval=2, _sync=True)
        assert run.state.is_completed(), run.state.message
        stages = stage_subflows(client, run.id)
        assert set(stages) == set(STAGES)
        assert {r.state.name for r in stages.values()} == {"Completed"}  # a fresh build: all ran

        # What the UI shows: a table per stage, the mixture, progress, the report.
        quality = {row["source"]: row for row in table("sample-quality")}
        assert quality["commoncrawl"]["status"] == "ran"
        assert quality["commoncrawl"]["documents in"] == 127
        assert quality["commoncrawl"]["kept"] == 15
        assert "quality:perplexity.tail: 53" in quality["commoncrawl"]["rejected by reason"]
        assert quality["wikipedia"]["MB/s"] > 0
        assert table("sample-tokenize")[0]["tokens"] > 0
        mixture = table("sample-mixture")
        assert {row["source"] for row in mixture} == set(quality)
        assert sum(row["actual %"] for row in mixture) == pytest.approx(100, abs=0.01)
        for row in mixture:
            assert abs(row["actual %"] - row["target %"]) < 0.1
        assert artifact_data("sample-progress") == 100.0
        assert "## quality" in artifact_data("sample-data-report")
        report = Path(served.recipe.parent / "work" / "REPORT.md")
        assert "| commoncrawl | 127 | 15 | 112 |" in report.read_text()

        # `mix` committed shards: the event starts train/sample with this recipe.
        train = wait_for_training(client, 1, served)
        assert train.state.is_completed(), train.state.message
        assert train.parameters["recipe_path"] == str(served.recipe)
        assert train.created > run.created
        assert re.match(r"loss [\d.]+ -> [\d.]+ over steps 1-6", train.state.message)
        losses = [row["loss"] for row in table("sample-training-loss")]
        assert losses[-1] < losses[0]
        assert (served.recipe.parent / "work" / "checkpoints" / "checkpoint.pt").exists()


def test_rerunning_one_stage_reruns_it_and_what_depends_on_it(served):
    from prefect.deployments import run_deployment

    with served_api(served) as client:
        trained = len(train_runs(client))
        run = run_deployment(
            "rerun-stage/sample-quality",
            parameters={"sources": ["commoncrawl"]},
            timeout=900,
            poll_interval=2,
            _sync=True,  # the browser's event loop shares this thread
        )
        assert run.state.is_completed(), run.state.message
        stages = stage_subflows(client, run.id)
        before = STAGES[: STAGES.index("quality")]
        for stage in before:
            assert stages[stage].state.name == "Cached", stage
        assert stages["quality"].state.message == "quality: ran for commoncrawl"
        assert stages["dedup"].state.message.startswith("dedup: ran for commoncrawl")
        for stage in ("train-tokenizer", "tokenize", "mix"):
            assert stages[stage].state.name == "Completed", stage
        statuses = {row["source"]: row["status"] for row in table("sample-quality")}
        assert statuses.pop("commoncrawl") == "ran"
        assert set(statuses.values()) == {"cached"}
        # New shards: training starts again.
        assert wait_for_training(client, trained + 1, served).state.is_completed()


def test_the_ui_reruns_a_stage_and_the_others_show_cached(served, ui):
    """In headless Chromium: find the deployments, rerun one stage, see it complete with the
    stages before it cached."""
    if ui is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import expect

    with served_api(served) as client:
        trained = len(train_runs(client))
    ui.goto(f"{served.ui_url}/deployments")
    for name in ("sample-tokenize", "sample-quality", "sample-mix"):
        expect(ui.get_by_role("link", name=name, exact=True)).to_be_visible()
    run_from_ui(ui, served, "rerun-stage", "sample-tokenize")
    assert subflow_states_in_ui(ui) == {
        **{stage: "Cached" for stage in STAGES[: STAGES.index("tokenize")]},
        "tokenize": "Completed",
        "mix": "Completed",
    }
    with served_api(served) as client:
        # Let the training these shards started finish before the server goes away.
        assert wait_for_training(client, trained + 1, served).state.is_completed()


def test_deployed_to_a_process_work_pool_a_worker_runs_them(served, tmp_path):
    """The at-scale path: `llama-recipe deploy` to a work pool, a worker runs the flow runs."""
    from prefect.deployments import run_deployment

    recipe = write_recipe(tmp_path, name="pooled", train=TRAIN)
    # The workdir the served recipe built (when the tests before this one ran), under another
    # recipe's name and path: the worker's run finds every stage before mix current.
    built = served.recipe.parent / "work"
    seeded = (built / "mix" / "_all" / "_MANIFEST.json").exists()
    if seeded:
        shutil.copytree(
            built, tmp_path / "work", ignore=shutil.ignore_patterns("checkpoints", "_LEASE*")
        )
    env = {**os.environ, "PREFECT_API_URL": served.api_url, "PREFECT_WORKER_QUERY_SECONDS": "2"}
    prefect = str(Path(sys.executable).parent / "prefect")
    created = subprocess.run(
        [prefect, "work-pool", "create", "llama", "--type", "process"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    command = [sys.executable, "-m", "flows.cli", "deploy", str(recipe), "--work-pool"]
    deployed = subprocess.run(
        [*command, "llama"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert "deployed 11 deployments to work pool 'llama'" in deployed.stdout
    missing = subprocess.run(
        [*command, "no-such-pool"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "llama-recipe: error: Could not find work pool 'no-such-pool'. "
        "Please create it before deploying this flow."
    )

    log = tmp_path / "worker.log"
    worker = [prefect, "worker", "start", "--pool", "llama"]
    with background(worker, log, env, tmp_path, stop=signal.SIGINT):
        with served_api(served) as client:
            assert client.read_deployment_by_name("build/pooled").work_pool_name == "llama"
            run = run_deployment("rerun-stage/pooled-mix", timeout=900, poll_interval=2, _sync=True)
            assert run.state.is_completed(), (run.state.message, log.read_text()[-3000:])
            states = {stage: r.state.name for stage, r in stage_subflows(client, run.id).items()}
            before_mix = "Cached" if seeded else "Completed"
            assert states == {**dict.fromkeys(STAGES[:-1], before_mix), "mix": "Completed"}
            train = wait_for_training(client, 1, served, recipe_name="pooled")
            assert train.state.is_completed(), log.read_text()[-3000:]
            assert train.work_pool_name == "llama"


def _serve_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "serve", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_mistakes_are_one_line(tmp_path):
    missing = _serve_cli(str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        == f"llama-recipe: error: {tmp_path}/nope.yaml: recipe file not found"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = _serve_cli(str(write_recipe(tmp_path)), "--port", str(port))
    assert busy.returncode == 2
    assert busy.stderr.strip().startswith(f"llama-recipe: error: 127.0.0.1:{port} is in use;")
    assert "Traceback" not in busy.stdout + busy.stderr
