"""The data flows: `build` (the recipe's stages in order) and `rerun-stage` (one stage and what
depends on it), both made of one subflow per stage, each running one Beam job.

What a person sees in the Prefect UI comes from here: a table artifact per stage (per source:
documents in, kept, rejected by reason, tokens, seconds, MB/s), a progress artifact for the
whole run, the evaluation examples decontaminate found, and the mixture and the data report
once `mix` has run. A stage that had nothing to do ends in a Completed state named "Cached";
a stage that fails says why in one line.
When `mix` commits new shards, the event `llama-recipe.shards.ready` is emitted: the `train`
deployment is triggered by it.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Sequence
from typing import Any

from apache_beam.io.filesystems import FileSystems
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State
from prefect.task_engine import TaskRunTimeoutError
from prefect.tasks import exponential_backoff

from flows.processes import start_guardian
from flows.recipe import load_recipe
from flows.report import (
    artifact_key,
    decontamination_rows,
    mixture_rows,
    report_markdown,
    stage_rows,
)
from flows.slots import give_back_slots, stage_slot
from pipelines.errors import UserError, UserErrorTracebacks
from pipelines.lease import WorkdirLease
from pipelines.preflight import check_environment
from pipelines.recipe import OrchestrationConfig, Recipe, is_uri
from pipelines.registry import STAGES, StageName, spec
from pipelines.shards import MIXTURE_JSON
from pipelines.stages import STAGE_CLASSES, StageContext, StageResult, run_stage

SHARDS_READY = "llama-recipe.shards.ready"


# Installed where the flows are defined, so it holds in every process that runs them.
logging.getLogger("prefect.task_runs").addFilter(UserErrorTracebacks())


def recipe_resource(recipe: Recipe) -> dict[str, str]:
    """The Prefect resource a recipe's events are about (triggers match on its id)."""
    return {
        "prefect.resource.id": f"llama-recipe.recipe.{recipe.name}",
        "prefect.resource.name": recipe.name,
    }


def _check_stages(selected: Sequence[str]) -> None:
    unknown = [s for s in selected if s not in STAGES]
    if unknown:
        raise UserError(f"unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")


def stages_to_run(selected: Sequence[str] | None) -> list[str]:
    """The named stages and every stage after the earliest of them (their inputs change)."""
    if not selected:
        return list(STAGES)
    _check_stages(selected)
    first = min(STAGES.index(s) for s in selected)
    return list(STAGES[first:])


def _not_a_user_error(task: Any, task_run: Any, state: State) -> bool:
    """Retry a stage attempt unless the recipe or the input is wrong (retrying cannot help)."""
    try:
        state.result()
    except UserError:
        return False
    except BaseException:  # noqa: BLE001 (any other failure is worth another attempt)
        return True
    return True


@task(name="run-stage", cache_policy=NO_CACHE, retry_condition_fn=_not_a_user_error)
def _run_stage_task(
    stage: str, ctx: StageContext, sources: list[str], force: bool | list[str]
) -> list[StageResult]:
    return run_stage(STAGE_CLASSES[stage](), ctx, sources, force=force)


def _stage_task(stage: str, orchestration: OrchestrationConfig):
    retries = orchestration.retries.get(stage, 0)
    return _run_stage_task.with_options(
        name=f"{stage}-beam-job",
        retries=retries,
        retry_delay_seconds=(
            exponential_backoff(orchestration.retry_delay_s)(retries) if retries else 0
        ),
        retry_jitter_factor=0.2 if retries else None,
        timeout_seconds=orchestration.timeout_s.get(stage),
    )


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"


def _emit_shards_ready(recipe: Recipe, recipe_path: str, manifest: dict[str, Any]) -> None:
    from prefect.events import emit_event

    shards = manifest["shards"]  # the committed version's folder
    mixture = manifest["mixture"]
    emit_event(
        event=SHARDS_READY,
        resource=recipe_resource(recipe),
        payload={
            "recipe": recipe_path if is_uri(recipe_path) else os.path.abspath(recipe_path),
            "mixture": FileSystems.join(shards, MIXTURE_JSON),
            "shards": shards,
            "tokens": mixture["total_tokens_packed"],
            "rows": mixture["rows"],
            "run_id": manifest["run_id"],
            "version": manifest["version"],
        },
    )


def _stage_flow(stage: str):
    @flow(name=stage, log_prints=False, validate_parameters=False)
    def run(
        recipe_path: str,
        sources: list[str],
        force: bool | list[str] = False,
        beam_flags: list[str] | None = None,
    ) -> State:
        logger = get_run_logger()
        try:
            recipe = load_recipe(recipe_path)
            ctx = StageContext.from_recipe(recipe, beam_flags or [])
            orchestration = recipe.orchestration
            limit = orchestration.concurrency.get(stage)
            with stage_slot(f"llama-recipe-{stage}", limit, recipe.workdir):
                results = _stage_task(stage, orchestration)(stage, ctx, sources, force)
        except UserError as exc:
            # A user's mistake is one line in the run's state, not a traceback.
            logger.error("%s: %s", stage, exc)
            return Failed(message=str(exc))
        except TaskRunTimeoutError:
            limit = recipe.orchestration.timeout_s[stage]
            return Failed(
                name="TimedOut",
                message=f"{stage} took longer than {limit:g} s (orchestration.timeout_s.{stage})",
            )
        except Exception as exc:
            logger.error("%s failed:\n%s", stage, traceback.format_exc())
            return Failed(message=f"{stage} failed: {_one_line(exc)}")
        summary = [
            {"stage": r.stage, "source": r.source, "status": r.status, "manifest": r.manifest}
            for r in results
        ]
        for r in results:
            logger.info("%s/%s: %s %s", stage, r.source, r.status, r.manifest.get("counts", ""))
        ran = [r.source for r in results if r.status == "ran"]
        cached = [r.source for r in results if r.status == "skipped"]
        create_table_artifact(
            stage_rows(recipe, stage, summary),
            key=artifact_key(recipe, stage),
            description=f"**{stage}**: ran for {', '.join(ran) or 'no source'}; "
            f"cached: {', '.join(cached) or 'none'}",
        )
        decontamination = decontamination_rows(recipe) if stage == "decontaminate" else []
        if decontamination and ran:
            create_table_artifact(
                decontamination,
                key=artifact_key(recipe, "decontamination"),
                description="**decontamination**: evaluation examples found, per task and source",
            )
        if stage == "mix" and ran:
            create_table_artifact(
                mixture_rows(recipe),
                key=artifact_key(recipe, "mixture"),
                description="**mixture**: target against actual share of the tokens per source",
            )
            _emit_shards_ready(recipe, recipe_path, results[0].manifest)
            logger.info("shards ready: emitted %s", SHARDS_READY)
        if not ran:
            what = "not needed by this recipe" if not cached else "up to date, nothing ran"
            return Completed(name="Cached", message=f"{stage}: {what}", data=summary)
        return Completed(message=f"{stage}: ran for {', '.join(ran)}", data=summary)

    return run


STAGE_FLOWS = {stage: _stage_flow(stage) for stage in STAGES}


def _publish_report(recipe: Recipe) -> None:
    """The data report as a Markdown artifact, written beside the data, with a link to it."""
    text = report_markdown(recipe)
    create_markdown_artifact(
        text, key=artifact_key(recipe, "data-report"), description="stage counts and mixture"
    )
    path = FileSystems.join(recipe.workdir, "REPORT.md")
    with FileSystems.create(path) as out:
        out.write(text.encode("utf-8"))
    link = path if "://" in path else f"file://{path}"
    create_link_artifact(
        link, link_text=path, key=artifact_key(recipe, "report-file"), description="data report"
    )


def _run_stages(
    recipe_path: str,
    recipe: Recipe,
    plan: list[tuple[str, list[str], bool | list[str]]],
    beam_flags: list[str] | None,
) -> State:
    """Run (stage, sources, force) in order as subflows, with a progress artifact."""
    if threading.current_thread() is threading.main_thread():
        # A flow run a worker or `serve` started: what it starts ends with it too.
        start_guardian()
    try:
        # The disk, the workdir and the models before any stage: never a retried failure.
        sources = sorted({name for _, names, _ in plan for name in names})
        check_environment(recipe, [stage for stage, _, _ in plan], sources)
    except UserError as exc:
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc))
    total = sum(len(sources) if spec(s).per_source else 1 for s, sources, _ in plan)
    progress = create_progress_artifact(
        0.0,
        key=artifact_key(recipe, "progress"),
        description=f"{recipe.name}: stages and sources done, of {total}",
    )
    done = 0
    summary: list[dict[str, Any]] = []
    # One data flow at a time per workdir, whatever Prefect server or machine it runs from.
    logger = get_run_logger()
    what = f"{flow_run.flow_name or 'build'} of recipe {recipe.name} (flow run {flow_run.name})"
    lease = WorkdirLease(
        recipe.workdir,
        what,
        say=lambda line: logger.info("%s", line),
        on_takeover=give_back_slots,
    )
    with lease:
        for stage, sources, force in plan:
            state = STAGE_FLOWS[stage](
                recipe_path, sources, force=force, beam_flags=beam_flags, return_state=True
            )
            if state.is_failed():
                return Failed(message=state.message or f"stage {stage} failed")
            summary.extend(state.result())
            done += len(sources) if spec(stage).per_source else 1
            update_progress_artifact(progress, 100.0 * done / total)
    _publish_report(recipe)
    ran = sorted({r["stage"] for r in summary if r["status"] == "ran"}, key=STAGES.index)
    message = f"ran: {', '.join(ran)}" if ran else "everything was up to date"
    return Completed(message=message, data=summary)


def _check_sources(recipe: Recipe, sources: Sequence[str] | None) -> list[str]:
    chosen = list(sources or recipe.sources)
    unknown = [s for s in chosen if s not in recipe.sources]
    if unknown:
        raise UserError(
            f"unknown source {unknown[0]!r}; the recipe has {', '.join(recipe.sources)}"
        )
    return chosen


@flow(name="build", validate_parameters=False)
def build(
    recipe_path: str,
    stages: list[str] | None = None,
    sources: list[str] | None = None,
    force: bool = False,
    beam_flags: list[str] | None = None,
) -> State:
    """Run the recipe's stages in order; `stages` reruns those and what follows them."""
    try:
        recipe = load_recipe(recipe_path)
        order = stages_to_run(stages)
        chosen = _check_sources(recipe, sources)
    except UserError as exc:
        return Failed(message=str(exc))
    forced = set(stages or STAGES) if force else set()
    if set(chosen) != set(recipe.sources):
        # The tokenizer (and so tokenize) and the mixture are built from every source: a build
        # restricted to some sources brings their own stages up to date and leaves the shared
        # ones for a full build.
        order = [stage for stage in order if STAGES.index(stage) < STAGES.index("train-tokenizer")]
        if any(recipe.uses_trained_classifier(s) for s in chosen):
            # The classifier these sources filter with needs its training sources too.
            chosen += [s for s in recipe.classifier_sources() if s not in chosen]
        else:
            order = [stage for stage in order if stage != "train-classifier"]
    plan = [(stage, chosen, stage in forced) for stage in order]
    return _run_stages(recipe_path, recipe, plan, beam_flags)


@flow(name="rerun-stage", validate_parameters=False)
def rerun_stage(
    recipe_path: str,
    stage: StageName,
    sources: list[str] | None = None,
    force: bool = True,
    beam_flags: list[str] | None = None,
) -> State:
    """Rerun one stage (for some sources, or all) and bring everything after it up to date.

    Every stage of the recipe runs as a subflow, so the run shows the whole build: the stages
    before this one are cached unless their inputs changed, this one reruns (`force`), and
    those after it rerun where their input is new."""
    try:
        recipe = load_recipe(recipe_path)
        _check_stages([stage])
        chosen = _check_sources(recipe, sources)
    except UserError as exc:
        return Failed(message=str(exc))
    everything = list(recipe.sources)
    plan = [
        (name, everything, (chosen if force else False) if name == stage else False)
        for name in STAGES
    ]
    return _run_stages(recipe_path, recipe, plan, beam_flags)
