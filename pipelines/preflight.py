"""What is checked before the first stage runs: a mistake in the environment is one line and
exit 2, never a stage that fails, is retried, and fails again.

- the workdir is writable (a local folder is created if needed; on an object store a probe
  object is written and deleted, which also shows the store is reachable);
- a local workdir has room for the next stage, estimated from that stage's input;
- the model files the stages to run need are there (lid.176, the filters' models), and the
  evaluation task files decontaminate reads.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence

from apache_beam.io.filesystems import FileSystems

from pipelines.errors import EnvironmentProblem, UserError
from pipelines.recipe import Recipe, is_uri
from pipelines.store import ALL_SOURCES, file_metadata

# What a stage writes, as a multiple of its input (Parquet of text is about as large as the
# compressed text it came from; a stage writes its kept rows and its rejects).
_OUTPUT_PER_INPUT = 1.5
_HEADROOM_BYTES = 1 << 20


def check_workdir_writable(workdir: str) -> None:
    probe = FileSystems.join(workdir, f".probe-{uuid.uuid4().hex}")
    try:
        if not is_uri(workdir):
            os.makedirs(workdir, exist_ok=True)
        with FileSystems.create(probe) as fh:
            fh.write(b"probe")
        FileSystems.delete([probe])
    except Exception as exc:  # noqa: BLE001 (every filesystem raises its own errors)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EnvironmentProblem(f"workdir {workdir}: not writable ({reason})") from None


def _bytes_matching(pattern: str) -> int:
    try:
        return sum(size or 0 for _, size, _ in file_metadata(pattern))
    except Exception:  # noqa: BLE001 (nothing there yet)
        return 0


def _bytes_in(folder: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
    )


def stage_input_bytes(recipe: Recipe, stage: str, sources: Sequence[str]) -> int:
    """The bytes a stage reads (local workdirs): its raw inputs for extract, else the outputs
    of the stages whose manifests it reads."""
    if stage == "extract":
        total = 0
        for source in sources:
            for pattern in recipe.sources[source].inputs:
                if not pattern.startswith(("http://", "https://")):
                    total += _bytes_matching(pattern)
        return total
    from pipelines.stages import STAGE_CLASSES, StageContext

    ctx = StageContext.from_recipe(recipe)
    runs = STAGE_CLASSES[stage]()
    read: set[tuple[str, str]] = set()
    for target in sources if runs.per_source else [ALL_SOURCES]:
        read |= {(m["stage"], m["source"]) for m in runs.upstream_manifests(ctx, target)}
    # A stage that passed its input through holds it in that input's folder.
    return sum(
        _bytes_in(ctx.store.dir(ctx.store.kept_by(name, source), source)) for name, source in read
    )


def next_to_run(recipe: Recipe, stages: Sequence[str], sources: Sequence[str]) -> str | None:
    """The first of `stages` that is not up to date (None: everything is)."""
    from pipelines.stages import STAGE_CLASSES, StageContext

    ctx = StageContext.from_recipe(recipe)
    for name in stages:
        stage = STAGE_CLASSES[name]()
        if not stage.needed(ctx):
            continue
        for target in sources if stage.per_source else [ALL_SOURCES]:
            try:
                fingerprint = stage.fingerprint(ctx, target)
            except UserError:
                return name  # what it reads is not there yet: it runs
            if not ctx.store.is_current(name, target, fingerprint):
                return name
    return None


def check_free_space(recipe: Recipe, stage: str, sources: Sequence[str]) -> None:
    """A local workdir must have room for what `stage` will write."""
    from pipelines.stages import STAGE_CLASSES, StageContext

    if is_uri(recipe.workdir):
        return  # object stores do not fill up
    if STAGE_CLASSES[stage]().passes_through(StageContext.from_recipe(recipe)):
        return  # it writes a manifest, not a copy
    needed = int(stage_input_bytes(recipe, stage, sources) * _OUTPUT_PER_INPUT) + _HEADROOM_BYTES
    free = shutil.disk_usage(recipe.workdir).free
    if free < needed:
        raise EnvironmentProblem(
            f"workdir {recipe.workdir}: {free / 1e6:,.0f} MB free, but {stage} needs about "
            f"{needed / 1e6:,.0f} MB (1.5x its input, plus 1 MB); free some space or move "
            "the workdir"
        )


def check_models(recipe: Recipe, stages: Sequence[str], sources: Sequence[str]) -> None:
    """The model files of the stages that will run are there (URLs are fetched later)."""
    from pipelines.lid_model import resolve_model_path

    missing = []
    if "langid" in stages:
        try:
            resolve_model_path(recipe.langid.model)
        except UserError as exc:
            raise EnvironmentProblem(str(exc)) from None
    if "quality" in stages:
        for source in sources:
            for index, config in enumerate(recipe.sources[source].filters):
                for key in ("model", "tokenizer", "bad_words"):
                    location = getattr(config, key, None)
                    if location is None or location.startswith(("http://", "https://")):
                        continue
                    if not FileSystems.exists(location):
                        where = f"sources.{source}.filters[{index}].{key}"
                        missing.append(f"{where}: {location} not found")
    if "decontaminate" in stages and recipe.decontamination is not None:
        for task, location in recipe.decontamination.tasks().items():
            remote = location.startswith(("http://", "https://"))  # fetched when it runs
            if not remote and not FileSystems.exists(location):
                missing.append(f"decontamination.eval_sets: {location} not found (task {task})")
    if missing:
        raise EnvironmentProblem("; ".join(missing))


def check_environment(recipe: Recipe, stages: Sequence[str], sources: Sequence[str]) -> None:
    """Every check, in the order a user would want to hear about them; models and space for
    the stages that will run (the first one not up to date, and those after it)."""
    check_workdir_writable(recipe.workdir)
    upcoming = next_to_run(recipe, stages, sources)
    if upcoming is None:
        return
    check_models(recipe, stages[list(stages).index(upcoming) :], sources)
    check_free_space(recipe, upcoming, sources)
