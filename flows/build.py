"""The `build` flow: every stage in order, one subflow per stage, each running one Beam job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, Failed, State

from pipelines.errors import UserError
from pipelines.recipe import STAGES, load_recipe
from pipelines.stages import STAGE_CLASSES, StageContext, run_stage


def stages_to_run(selected: Sequence[str] | None) -> list[str]:
    """The named stages and every stage after the earliest of them (their inputs change)."""
    if not selected:
        return list(STAGES)
    unknown = [s for s in selected if s not in STAGES]
    if unknown:
        raise UserError(f"unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")
    first = min(STAGES.index(s) for s in selected)
    return list(STAGES[first:])


def _artifact_markdown(stage: str, results: list[dict[str, Any]]) -> str:
    lines = [
        f"### {stage}",
        "",
        "| source | status | input | kept | rejected | top reasons |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        counts = r["manifest"].get("counts", {})
        reasons = r["manifest"].get("rejected_by_reason", {})
        top = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        lines.append(
            f"| {r['source']} | {r['status']} | {counts.get('input', '')} | "
            f"{counts.get('kept', '')} | {counts.get('rejected', '')} | {top} |"
        )
    return "\n".join(lines)


def _stage_flow(stage: str):
    @flow(name=stage, log_prints=False, validate_parameters=False)
    def run(
        recipe_path: str,
        sources: list[str],
        force: bool = False,
        beam_flags: list[str] | None = None,
    ) -> State:
        logger = get_run_logger()
        try:
            recipe = load_recipe(recipe_path)
            ctx = StageContext.from_recipe(recipe, beam_flags or [])
            results = run_stage(STAGE_CLASSES[stage](), ctx, sources, force=force)
        except UserError as exc:
            # A user's mistake is one line in the run's state, not a traceback.
            return Failed(message=str(exc))
        summary = [
            {"stage": r.stage, "source": r.source, "status": r.status, "manifest": r.manifest}
            for r in results
        ]
        for r in results:
            logger.info("%s/%s: %s %s", stage, r.source, r.status, r.manifest.get("counts", ""))
        if any(r.status == "ran" for r in results):
            create_markdown_artifact(
                _artifact_markdown(stage, summary), key=f"{stage.replace('-', '')}-counts"
            )
        return Completed(data=summary)

    return run


STAGE_FLOWS = {stage: _stage_flow(stage) for stage in STAGES}


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
        chosen = list(sources or recipe.sources)
        unknown = [s for s in chosen if s not in recipe.sources]
        if unknown:
            raise UserError(
                f"unknown source {unknown[0]!r}; the recipe has {', '.join(recipe.sources)}"
            )
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
    summary: list[dict[str, Any]] = []
    for stage in order:
        state = STAGE_FLOWS[stage](
            recipe_path, chosen, force=stage in forced, beam_flags=beam_flags, return_state=True
        )
        if state.is_failed():
            return Failed(message=state.message or f"stage {stage} failed")
        summary.extend(state.result())
    return Completed(data=summary)
