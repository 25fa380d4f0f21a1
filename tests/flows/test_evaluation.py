"""The recipe's `evaluation` section, the eval flow and its deployment, which a completed
training run starts, against a real Prefect API (the test harness's local server)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch

from flows.recipe import load_recipe
from pipelines.errors import RecipeError
from tests.conftest import SAMPLES, write_recipe
from tests.support.tiny_lm import ARGS, TASK_FILES, write_checkpoint
from trainer.model import Llama

EVALUATION = {
    "tasks": {"piqa": str(TASK_FILES["piqa"]), "gsm8k": str(TASK_FILES["gsm8k"])},
    "scoring": {"piqa": "none"},
    "max_new_tokens": 4,
}


def _trained(recipe_path: Path) -> Path:
    """A checkpoint.pt and a tokenizer where training and the build leave them."""
    from pipelines.store import StageStore

    recipe = load_recipe(recipe_path)
    tokenizer = Path(StageStore(recipe.workdir).tokenizer_dir())
    tokenizer.mkdir(parents=True)
    shutil.copyfile(SAMPLES / "lm" / "wikipedia.sp.model", tokenizer / "tokenizer.model")
    torch.manual_seed(0)
    path = Path(recipe.workdir) / "checkpoints" / "checkpoint.pt"
    return write_checkpoint(Llama(ARGS), path, step=6)


def test_the_evaluation_section_resolves_its_paths_and_checks_its_names(tmp_path):
    path = write_recipe(
        tmp_path,
        evaluation={"tasks": {"piqa": "tasks/piqa.jsonl"}, "fewshot": {"piqa": "train.jsonl"}},
    )
    evaluation = load_recipe(path).evaluation
    assert evaluation.tasks == {"piqa": str(tmp_path / "tasks" / "piqa.jsonl")}
    assert evaluation.fewshot == {"piqa": str(tmp_path / "train.jsonl")}
    assert evaluation.shots == 0 and evaluation.checkpoint is None
    assert load_recipe(write_recipe(tmp_path)).evaluation is None
    wrong = write_recipe(tmp_path, evaluation={"tasks": {"piqa": "p.jsonl"}, "shots": {"arc": 5}})
    with pytest.raises(RecipeError, match=r"evaluation: Value error, shots: no task 'arc'"):
        load_recipe(wrong)


def test_the_eval_deployment_is_served_only_with_an_evaluation_section(tmp_path):
    from flows.serve import deployments

    names = {(d.flow_name, d.name) for d in deployments(str(write_recipe(tmp_path)))}
    assert ("train", "sample") in names and not any(flow == "eval" for flow, _ in names)
    served = deployments(str(write_recipe(tmp_path, evaluation=EVALUATION)))
    (evaluation,) = [d for d in served if d.flow_name == "eval"]
    assert evaluation.name == "sample" and len(served) == len(names) + 1
    (trigger,) = evaluation.triggers
    assert trigger.expect == {"prefect.flow-run.Completed"}


@pytest.mark.integration
def test_eval_flow_publishes_a_table_of_accuracy_per_task(prefect_api, tmp_path):
    from prefect.artifacts import Artifact

    from flows.evaluation import eval_flow

    path = write_recipe(tmp_path, evaluation=EVALUATION)
    state = eval_flow(str(path), return_state=True)
    assert state.is_failed()
    assert state.message.endswith("checkpoint.pt: checkpoint not found")
    checkpoint = _trained(path)
    state = eval_flow(str(path), return_state=True)
    assert state.is_completed(), state.message
    assert state.message.startswith(f"step 6 ({checkpoint}): piqa ")
    rows = json.loads(Artifact.get("sample-evaluation").data)
    assert [(r["task"], r["scoring"], r["examples"]) for r in rows] == [
        ("piqa", "none", 6),
        ("gsm8k", "number", 5),
    ]
    assert "| piqa | none | 0 | 6 |" in Artifact.get("sample-evaluation-report").data
    results = json.loads((checkpoint.parent / "eval-results.json").read_text())
    assert results["step"] == 6 and set(results["tasks"]) == {"piqa", "gsm8k"}
    assert len((checkpoint.parent / "eval-examples.jsonl").read_text().splitlines()) == 11
    (tmp_path / "plain").mkdir()
    no_section = eval_flow(str(write_recipe(tmp_path / "plain")), return_state=True)
    assert no_section.is_failed() and "no `evaluation` section" in no_section.message


@pytest.mark.integration
def test_a_completed_training_run_starts_the_eval_deployment(prefect_api, tmp_path):
    """The Completed event Prefect emits for a run of train/<recipe> (its states set here, as
    the runner would) makes the server start eval/<recipe> with the recipe's path; that of
    a run of build/<recipe>, which came first, does not."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.states import Completed, Running

    from flows.serve import deployments

    path = str(write_recipe(tmp_path, name="evaluated", evaluation=EVALUATION))
    flows = ("build", "train", "eval")
    ids = {d.flow_name: d.apply() for d in deployments(path) if d.flow_name in flows}
    with get_client(sync_client=True) as client:
        for upstream in ("build", "train"):
            run = client.create_flow_run_from_deployment(ids[upstream])
            client.set_flow_run_state(run.id, Running(), force=True)
            client.set_flow_run_state(run.id, Completed(), force=True)
        deadline = time.monotonic() + 60
        while True:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[ids["eval"]]))
            )
            if runs or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert len(runs) == 1, "no eval run within 60 s of the training run's completion"
    assert runs[0].parameters["recipe_path"] == path
