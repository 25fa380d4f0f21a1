"""`llama-recipe serve`: the recipe's deployments, served from this process.

Deployments, for a recipe named N:
- `build/N`: the whole recipe (parameters: recipe_path, stages, sources, force);
- `rerun-stage/N-<stage>`, one per stage: rerun that stage (force, for some or all sources)
  and bring what depends on it up to date; everything else shows as cached;
- `train/N`: train on the mix shards (recipe_path, model, resume, max_steps), started by
  the `llama-recipe.shards.ready` event that a build emits when `mix` commits;
- `eval/N`, where the recipe has an `evaluation` section: score the trained checkpoint on
  its tasks (recipe_path, checkpoint, device), started when a run of `train/N` completes.

They are served with `prefect.serve`: one long-running process polls the API and runs each
flow run in a subprocess on this machine. That needs no work pool, no worker and no image,
which suits one machine; at scale the same flows are deployed to a work pool with
`prefect deploy` (see docs/orchestration.md). Without a configured Prefect API, a local
Prefect server (SQLite under PREFECT_HOME) is started on 127.0.0.1 first.
"""

from __future__ import annotations

import _thread
import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from flows.recipe import load_recipe
from flows.server import prefect_home, start_server, stop_server
from pipelines.errors import UserError
from pipelines.registry import STAGES


def deployments(recipe_path: str) -> list:
    """The recipe's deployments, ready for `prefect.serve`."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.events import DeploymentEventTrigger
    from prefect.types.entrypoint import EntrypointType

    from flows.build import SHARDS_READY, build, recipe_resource, rerun_stage
    from flows.training import train_flow

    path = str(Path(recipe_path).resolve())
    recipe = load_recipe(path)
    common = {"tags": ["llama-recipe", recipe.name], "entrypoint_type": EntrypointType.MODULE_PATH}
    served = [
        build.to_deployment(
            name=recipe.name,
            parameters={"recipe_path": path},
            description=f"Build every stage of {path} (cached stages are skipped).",
            concurrency_limit=ConcurrencyLimitConfig(limit=1),  # more wait in the queue
            **common,
        )
    ]
    for stage in STAGES:
        served.append(
            rerun_stage.to_deployment(
                name=f"{recipe.name}-{stage}",
                parameters={"recipe_path": path, "stage": stage, "force": True},
                description=(
                    f"Rerun `{stage}` of {path} (all sources, or those in `sources`) and "
                    "what depends on it; other stages stay cached."
                ),
                **common,
            )
        )
    train_trigger = DeploymentEventTrigger(
        name=f"{recipe.name}: shards ready",
        expect={SHARDS_READY},
        match={"prefect.resource.id": recipe_resource(recipe)["prefect.resource.id"]},
        parameters={"recipe_path": "{{ event.payload.recipe }}"},
    )
    train = f"Train on the shards of {path}; starts when a build commits new shards."
    limit = recipe.orchestration.train_concurrency
    served.append(_triggered(train_flow, recipe.name, path, train, train_trigger, limit, common))
    if recipe.evaluation is not None:
        from flows.evaluation import eval_flow

        # Prefect emits this event for every flow run that completes, with the run's flow and
        # deployment among its related resources: here, runs of train/<name>.
        eval_trigger = DeploymentEventTrigger(
            name=f"{recipe.name}: trained",
            expect={"prefect.flow-run.Completed"},
            match_related=[
                {"prefect.resource.role": "flow", "prefect.resource.name": "train"},
                {"prefect.resource.role": "deployment", "prefect.resource.name": recipe.name},
            ],
            parameters={"recipe_path": path},
        )
        evaluate = f"Evaluate the checkpoint trained on {path}; starts when training completes."
        served.append(_triggered(eval_flow, recipe.name, path, evaluate, eval_trigger, 1, common))
    return served


def _triggered(flow, name: str, path: str, description: str, trigger, limit: int, common: dict):
    """A deployment of `flow` for the recipe at `path` that `trigger` starts; `limit` runs at
    a time (more wait in the queue)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    return flow.to_deployment(
        name=name,
        parameters={"recipe_path": path},
        description=description,
        triggers=[trigger],
        concurrency_limit=ConcurrencyLimitConfig(limit=limit),
        **common,
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _watch(server: subprocess.Popen, stopping: threading.Event) -> None:
    """If the local server dies while serving, say so and stop: the runner cannot work without
    it, and its shutdown (pausing the deployments through the API) could wait forever."""
    while server.poll() is None:
        if stopping.wait(1.0):
            return
    if stopping.is_set():
        return
    print(
        f"llama-recipe: error: the Prefect server stopped (exit code {server.returncode}; "
        f"see {os.path.join(prefect_home(), 'server.log')}); stopping",
        file=sys.stderr,
        flush=True,
    )
    _thread.interrupt_main()
    if not stopping.wait(15.0):
        os._exit(1)


def serve(recipe_path: str, host: str = "127.0.0.1", port: int = 4200) -> int:
    """Serve the recipe's deployments; start a local server first when no API is configured."""
    from prefect.runner import Runner
    from prefect.settings import PREFECT_API_URL, temporary_settings

    served = deployments(recipe_path)  # a bad recipe fails here, before anything starts
    api_url = PREFECT_API_URL.value()
    server = None
    stopping = threading.Event()
    # `kill` and service managers stop with SIGTERM: stop as for Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not api_url:
            server = start_server(host, port, ui=True)
            print(f"server log: {os.path.join(prefect_home(), 'server.log')}", flush=True)
            api_url = f"http://{host}:{port}/api"
            threading.Thread(target=_watch, args=(server, stopping), daemon=True).start()
        ui_url = api_url.removesuffix("/api")
        names = ", ".join(d.full_name for d in served)
        print(f"Prefect UI: {ui_url}", flush=True)
        print(f"serving {len(served)} deployments: {names}", flush=True)
        print(f"run one: {ui_url}/deployments (Ctrl-C stops)", flush=True)
        with temporary_settings({PREFECT_API_URL: api_url}):
            runner = Runner(pause_on_shutdown=True)
            for deployment in served:
                runner.add_deployment(deployment)
            # Ctrl-C stops the runner gracefully, as SIGTERM does (asyncio's own handler
            # cancels a task the runner may outlive); a second Ctrl-C exits at once.
            signal.signal(signal.SIGINT, lambda signum, frame: runner.handle_sigterm())
            asyncio.run(runner.start())
    except KeyboardInterrupt:
        pass
    finally:
        stopping.set()
        if server is not None:
            stop_server(server)
    return 0


def deploy(recipe_path: str, work_pool: str, image: str | None = None) -> int:
    """Register the recipe's deployments on the configured server, run by a work pool's
    workers: machines (or images) where llama-recipe is installed import the flows by module."""
    from prefect import deploy as prefect_deploy
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise UserError(
            "deploy registers deployments on a Prefect server: set PREFECT_API_URL "
            "(or use `llama-recipe serve`, which starts a local one)"
        )
    served = deployments(recipe_path)
    try:
        prefect_deploy(
            *served,
            work_pool_name=work_pool,
            image=image,
            build=False,
            push=False,
            print_next_steps_message=False,
            ignore_warnings=True,
        )
    except ValueError as exc:  # e.g. the work pool does not exist
        raise UserError(str(exc).splitlines()[0]) from None
    print(f"deployed {len(served)} deployments to work pool {work_pool!r}:")
    for d in served:
        print(f"  {d.full_name}")
    print(
        f"start a worker where llama-recipe is installed: prefect worker start --pool {work_pool}"
    )
    return 0
