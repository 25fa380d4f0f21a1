"""`llama-recipe`: build the data, show where it stands, tune the filters, train.

Flags that `build` does not know go to Beam's PipelineOptions, as in every Beam program
(`--runner DataflowRunner --project ...`).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from flows.recipe import load_recipe
from pipelines.errors import UserError, UserErrorTracebacks
from pipelines.registry import STAGES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llama-recipe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="run the recipe's stages (cached, restartable)")
    build.add_argument("recipe")
    build.add_argument(
        "--stages",
        nargs="+",
        choices=STAGES,
        metavar="STAGE",
        help=f"run these stages and the ones after them ({', '.join(STAGES)})",
    )
    build.add_argument(
        "--sources",
        nargs="+",
        metavar="SOURCE",
        help="only these sources, up to decontaminate (the tokenizer and the mix need all)",
    )
    build.add_argument("--force", action="store_true", help="rerun stages even when current")

    status = commands.add_parser("status", help="stage x source table of document counts")
    status.add_argument("recipe")

    train = commands.add_parser("train", help="train the recipe's model on its mix shards")
    train.add_argument("recipe")
    train.add_argument("--max-steps", type=int, help="override train.max_steps")
    train.add_argument("--model", help="override train.model (tiny, small, 7B, 13B, 33B, 65B)")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    train.add_argument(
        "--no-verify-shards",
        dest="verify_shards",
        action="store_false",
        help="skip the sha256 and token-id check of each shard (size and footer are checked)",
    )

    plan = commands.add_parser(
        "plan",
        help="the epochs per source a token budget gives (Table 1 for your data), and the "
        "core-hours by stage a text size costs",
    )
    plan.add_argument("recipe")
    plan.add_argument(
        "--tokens",
        nargs="+",
        default=[],
        metavar="SOURCE=N",
        help="tokens available in a source (e.g. commoncrawl=852.7B); default: the build's",
    )
    plan.add_argument("--total-tokens", help="the budget (default: mixture.total_tokens)")
    plan.add_argument(
        "--text",
        nargs="+",
        default=[],
        metavar="SOURCE=SIZE",
        help="bytes of document text in a source (e.g. commoncrawl=3.3T c4=783G): core-hours "
        "by stage from the measured rates",
    )
    plan.add_argument(
        "--paper",
        action="store_true",
        help="the paper's Table 1 sizes for the sources that are its corpora (--text overrides)",
    )

    classifier = commands.add_parser(
        "train-quality-classifier",
        help="train the reference classifier from the recipe's quality_classifier section",
    )
    classifier.add_argument("recipe")
    classifier.add_argument("--force", action="store_true", help="retrain even when current")

    explain = commands.add_parser(
        "explain-filters", help="scores and verdicts of every filter for a sample of documents"
    )
    explain.add_argument("recipe")
    explain.add_argument("--source", required=True, help="the source to sample")
    explain.add_argument("--sample", type=int, default=20, metavar="N", help="documents (20)")
    explain.add_argument("--seed", type=int, default=0, help="draws the sample (0)")
    explain.add_argument("--json", action="store_true", help="one JSON object per document")

    info = commands.add_parser(
        "model-info", help="exact parameters, FLOPs per token, memory per GPU under FSDP"
    )
    info.add_argument("config", help="tiny, small, 7B, 13B, 33B, 65B")
    info.add_argument("--gpus", type=int, default=1)
    info.add_argument("--batch-per-gpu", type=int, default=1, help="sequences per GPU")
    info.add_argument("--seq-len", type=int, default=2048)
    info.add_argument("--vocab-size", type=int, default=32000)

    export = commands.add_parser("export", help="write a Hugging Face Llama checkpoint")
    export.add_argument("checkpoint", help="a checkpoint.pt written by `train`")
    export.add_argument("--hf", required=True, metavar="OUT", help="the folder to write")
    export.add_argument(
        "--tokenizer", help="tokenizer folder (default: the build's, beside the checkpoints)"
    )
    export.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")

    gen = commands.add_parser("generate", help="continue a prompt with a trained checkpoint")
    gen.add_argument("checkpoint", help="a checkpoint.pt written by `train`, or an export folder")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--max-new-tokens", type=int, default=64)
    gen.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--tokenizer", help="tokenizer folder (default: the build's)")

    evaluate = commands.add_parser(
        "eval",
        help="score a checkpoint on evaluation tasks as the LLaMA paper does (docs/eval.md)",
        description="Score a checkpoint on task files (JSON lines, docs/eval.md): multiple "
        "choice by the log-likelihood of each choice, free form by greedy generation.",
    )
    evaluate.add_argument(
        "checkpoint", help="a checkpoint.pt written by `train`, or a folder written by `export`"
    )
    evaluate.add_argument(
        "--task",
        nargs="+",
        action="extend",
        required=True,
        metavar="NAME=FILE",
        help="a task file (JSON lines, docs/eval.md) and the name it is reported under",
    )
    for flag, metavar, text in (
        ("--fewshot", "NAME=FILE", "a task's training examples, which few-shot prompts come from"),
        ("--shots", "K|NAME=K", "examples in each prompt: K for every task, NAME=K for one (0)"),
        (
            "--scoring",
            "NAME=HOW",
            "chars, answer or none (multiple choice); exact or number (free form); default: "
            "answer for boolq and openbookqa, number for gsm8k, else chars or exact",
        ),
    ):
        evaluate.add_argument(
            flag, nargs="+", action="extend", default=[], metavar=metavar, help=text
        )
    evaluate.add_argument("--seed", type=int, default=0, help="draws the few-shot examples (0)")
    evaluate.add_argument("--batch-size", type=int, default=8, help="examples per pass (8)")
    evaluate.add_argument(
        "--max-new-tokens", type=int, help="tokens of a free-form answer (exact 32, number 256)"
    )
    evaluate.add_argument("--limit", type=int, metavar="N", help="the first N examples of a task")
    evaluate.add_argument("--device", default="auto", help="cpu, cuda, cuda:N (auto: cuda if any)")
    evaluate.add_argument("--tokenizer", help="tokenizer folder (default: the build's)")
    evaluate.add_argument("--out", metavar="FILE", help="write the results as JSON")
    evaluate.add_argument(
        "--examples", metavar="FILE", help="write each example's record as JSON lines"
    )

    serve = commands.add_parser(
        "serve",
        help="serve the recipe's Prefect deployments (build, one per stage, train, eval)",
        description="Serve the recipe's deployments: build, rerun-stage (one per stage), "
        "train, which starts when a build commits new shards, and eval (for a recipe with an "
        "`evaluation` section), which starts when training completes. With no PREFECT_API_URL "
        "set, a local Prefect server (SQLite under PREFECT_HOME) is started on 127.0.0.1 first.",
    )
    serve.add_argument("recipe")
    serve.add_argument("--port", type=int, default=4200, help="the local server's port (4200)")

    deploy = commands.add_parser(
        "deploy",
        help="register the recipe's deployments for a work pool's workers (at scale)",
        description="Register build, rerun-stage and train on the Prefect server at "
        "PREFECT_API_URL, run by the workers of a work pool (process, Kubernetes, Docker...) "
        "on machines or images where llama-recipe is installed.",
    )
    deploy.add_argument("recipe")
    deploy.add_argument("--work-pool", required=True, help="an existing work pool")
    deploy.add_argument("--image", help="the image with llama-recipe (container work pools)")

    fetch = commands.add_parser("fetch-lid-model", help="download and verify lid.176.ftz")
    fetch.add_argument("--dest", type=Path, help="where to put it (default: the user cache)")
    return parser


def cmd_build(args: argparse.Namespace, beam_flags: list[str]) -> int:
    from flows.build import build, stages_to_run
    from flows.report import input_warnings, print_report
    from flows.server import prefect_api
    from pipelines.preflight import check_environment
    from pipelines.stages import StageContext
    from pipelines.stages.extract import expand_inputs

    # A bad recipe or a missing input fails here, in a second, before Prefect starts.
    recipe = load_recipe(args.recipe)
    ctx = StageContext.from_recipe(recipe)
    for source in args.sources or recipe.sources:
        if source in recipe.sources:
            expand_inputs(ctx, source)
    # The workdir, its free space and the model files, before a Prefect server starts.
    chosen = [s for s in args.sources or recipe.sources if s in recipe.sources]
    check_environment(recipe, stages_to_run(args.stages), chosen)
    with prefect_api() as api:  # the configured server, or a temporary local one
        state = build(
            recipe_path=args.recipe,
            stages=args.stages,
            sources=args.sources,
            force=args.force,
            beam_flags=beam_flags,
            return_state=True,
        )
    if state.is_failed():
        raise UserError(state.message or "build failed")
    print_report(recipe)
    for line in input_warnings(recipe):
        print(f"llama-recipe: warning: {line}", file=sys.stderr)
    if api.restarted:
        # Log lines queued while the temporary server was down are retried with backoff
        # against a server that is gone now, for a minute at exit: they are not worth it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from flows.report import print_report

    print_report(load_recipe(args.recipe))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from flows.training import step_line, train_recipe

    recipe = load_recipe(args.recipe)
    history, checkpoint_dir = train_recipe(
        recipe,
        args.model,
        args.max_steps,
        resume=args.resume,
        log=lambda record: print(step_line(record), flush=True),
        verify_shards=args.verify_shards,
        say=lambda line: print(line, flush=True),
    )
    if not history:
        print(f"nothing to do: the checkpoint in {checkpoint_dir} is at train.max_steps")
        return 0
    print(
        f"loss: first step {history[0]['loss']:.4f} -> last step {history[-1]['loss']:.4f} "
        f"({len(history)} steps); checkpoint in {checkpoint_dir}"
    )
    return 0


def _workdir_lease(ctx, what: str):
    from pipelines.lease import WorkdirLease

    say = lambda line: print(f"llama-recipe: {line}", file=sys.stderr)  # noqa: E731
    return WorkdirLease(ctx.recipe.workdir, f"{what} of recipe {ctx.recipe.name}", say=say)


def _bring_up_to_date(ctx, stages: list[str], sources: list[str]) -> None:
    from pipelines.stages import STAGE_CLASSES, run_stage

    for stage in stages:
        for result in run_stage(STAGE_CLASSES[stage](), ctx, sources):
            print(f"{stage}/{result.source}: {result.status}", file=sys.stderr)


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from pipelines.stages import STAGE_CLASSES, StageContext, run_stage
    from pipelines.stages.classifier import CARD_MARKDOWN
    from pipelines.store import ALL_SOURCES

    recipe = load_recipe(args.recipe)
    config = recipe.quality_classifier
    if config is None:
        raise UserError(f"{args.recipe}: no `quality_classifier` section to train from")
    ctx = StageContext.from_recipe(recipe)
    with _workdir_lease(ctx, "train-quality-classifier"):
        _bring_up_to_date(ctx, ["extract", "langid"], recipe.classifier_sources())
        # Asked for by name: trained even when no filter of the recipe uses it.
        stage = STAGE_CLASSES["train-classifier"](required=True)
        (result,) = run_stage(stage, ctx, [ALL_SOURCES], force=args.force)
    card = result.manifest
    m = card["metrics"]
    print(
        f"reference classifier ({'trained' if result.status == 'ran' else 'up to date'}): "
        f"{m['positives']} positive and "
        f"{m['negatives']} negative documents, each scored by the model that did not train on it"
    )
    print(
        f"held-out  precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}  "
        f"accuracy {m['accuracy']:.3f}  AUC {m['auc']:.3f}  (threshold {m['threshold']})"
    )
    print(f"model card: {ctx.store.path(stage.name, ALL_SOURCES, CARD_MARKDOWN)}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from pipelines.explain import explain, explain_json, render
    from pipelines.stages import StageContext

    recipe = load_recipe(args.recipe)
    ctx = StageContext.from_recipe(recipe)
    if args.source not in recipe.sources:
        raise UserError(
            f"no source {args.source!r} in {args.recipe} (sources: {', '.join(recipe.sources)})"
        )
    if args.sample <= 0:
        raise UserError("--sample must be a positive number of documents")
    with _workdir_lease(ctx, "explain-filters"):
        _bring_up_to_date(ctx, ["extract"], [args.source])
    explained, cutoffs = explain(ctx, args.source, args.sample, args.seed)
    print(explain_json(explained) if args.json else render(explained, cutoffs))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from flows.plan import parse_amount, print_plan

    recipe = load_recipe(args.recipe)
    total = parse_amount(args.total_tokens) if args.total_tokens else None
    print_plan(recipe, total, args.tokens, args.text, args.paper)
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from trainer.info import describe
    from trainer.model import CONFIGS

    if args.config not in CONFIGS:
        raise UserError(f"unknown model {args.config!r}; one of {', '.join(CONFIGS)}")
    if min(args.gpus, args.batch_per_gpu, args.seq_len, args.vocab_size) < 1:
        raise UserError("--gpus, --batch-per-gpu, --seq-len and --vocab-size must be positive")
    print(describe(args.config, args.vocab_size, args.seq_len, args.gpus, args.batch_per_gpu))
    return 0


def _tokenizer_beside(checkpoint: str, given: str | None) -> str | None:
    if given:
        return given
    if os.path.isfile(os.path.join(checkpoint, "tokenizer.model")):
        return checkpoint  # a folder written by `export`
    from pipelines.store import StageStore

    # A checkpoint lives in <workdir>/<checkpoint folder>/ unless train.checkpoint_dir moved it.
    workdir = os.path.dirname(os.path.dirname(os.path.abspath(checkpoint)))
    guess = StageStore(workdir).tokenizer_dir()
    return guess if os.path.isdir(guess) else None


def _tokenizer_of(checkpoint_path: str, given: str | None) -> str:
    if not os.path.exists(checkpoint_path):
        raise UserError(f"{checkpoint_path}: checkpoint not found")
    tokenizer = _tokenizer_beside(checkpoint_path, given)
    if tokenizer is None or not os.path.isfile(os.path.join(tokenizer, "tokenizer.model")):
        raise UserError("no tokenizer.model found beside the checkpoint; give --tokenizer")
    return tokenizer


def cmd_generate(args: argparse.Namespace) -> int:
    from trainer.evaluate import load_model, load_tokenizer
    from trainer.generate import continuation, generate

    sp = load_tokenizer(_tokenizer_of(args.checkpoint, args.tokenizer))
    model, _ = load_model(args.checkpoint)
    prompt = [sp.bos_id(), *sp.encode(args.prompt)]
    new = generate(model, prompt, args.max_new_tokens, args.temperature, args.top_p)
    # Decoded after the prompt, not alone: alone, SentencePiece drops the first space.
    print(args.prompt + continuation(sp, prompt, [t for t in new if t != sp.eos_id()]))
    return 0


def _named(items: list[str], flag: str, value=str) -> dict:
    """NAME=VALUE items of a flag as a mapping."""
    named = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name or not text:
            raise UserError(f"{flag} {item}: give NAME=VALUE")
        try:
            named[name] = value(text)
        except ValueError:
            raise UserError(f"{flag} {item}: {text!r} is not a number") from None
    return named


def eval_settings(args: argparse.Namespace):
    """The `eval` flags as the recipe's evaluation section would say them."""
    from trainer.tasks import EvalSettings

    tasks = _named(args.task, "--task")
    everywhere = [s for s in args.shots if "=" not in s]
    if everywhere and not everywhere[-1].isdigit():
        raise UserError(f"--shots {everywhere[-1]}: a number, or NAME=K")
    shots = {name: int(everywhere[-1]) if everywhere else 0 for name in tasks}
    shots.update(_named([s for s in args.shots if "=" in s], "--shots", int))
    try:
        return EvalSettings(
            tasks=tasks,
            fewshot=_named(args.fewshot, "--fewshot"),
            shots=shots,
            scoring=_named(args.scoring, "--scoring"),
            seed=args.seed,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    from trainer.evaluate import evaluate_checkpoint, summary, write_results

    settings = eval_settings(args)
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be a positive number of examples")
    tokenizer = _tokenizer_of(args.checkpoint, args.tokenizer)
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    results, meta = evaluate_checkpoint(
        args.checkpoint, tokenizer, settings, args.device, args.limit, say
    )
    step = meta.get("step")
    title = f"{args.checkpoint}" + (f" (step {step})" if step is not None else "")
    Console(width=max(Console().width, 100)).print(eval_table(summary(results), title))
    write_results(results, args.checkpoint, step, args.out, args.examples)
    return 0


def eval_table(rows: list[dict], title: str):
    """The per-task rows of an evaluation as a table for the terminal."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("task", "scoring", "shots", "examples", "accuracy", "± stderr", "unnormalized"):
        table.add_column(column, justify="left" if column in ("task", "scoring") else "right")
    for row in rows:
        unnormalized = row["unnormalized"]
        table.add_row(
            row["task"],
            row["scoring"],
            str(row["shots"]),
            str(row["examples"]),
            f"{row['accuracy']:.4f}",
            f"{row['stderr']:.4f}",
            "" if unnormalized is None else f"{unnormalized:.4f}",
        )
    return table


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from trainer.checkpoint import load_whole
    from trainer.export import export_hf
    from trainer.model import ModelArgs

    if not os.path.isfile(args.checkpoint):
        raise UserError(f"{args.checkpoint}: checkpoint not found")
    checkpoint = load_whole(args.checkpoint)
    model_args = ModelArgs(**checkpoint["model_args"])
    tokenizer = _tokenizer_beside(args.checkpoint, args.tokenizer)
    written = export_hf(
        checkpoint["model"], model_args, args.hf, tokenizer, getattr(torch, args.dtype)
    )
    print(f"wrote {', '.join(written)} to {args.hf}")
    if tokenizer is None:
        print("llama-recipe: warning: no tokenizer files (give --tokenizer)", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.serve import serve

    return serve(args.recipe, port=args.port)


def cmd_deploy(args: argparse.Namespace) -> int:
    from flows.serve import deploy

    return deploy(args.recipe, args.work_pool, args.image)


def cmd_fetch(args: argparse.Namespace) -> int:
    from pipelines.lid_model import fetch_lid_model

    print(f"lid.176.ftz verified at {fetch_lid_model(args.dest)}")
    return 0


def _not_bigquery_notice(record: logging.LogRecord) -> bool:
    # Beam warns at import that BigQuery's client libraries are missing; nothing here uses them.
    return not str(record.msg).startswith("apitools not found")


# Commands that start processes (a Prefect server, Beam workers, torchrun, flow runs).
_SPAWNING_COMMANDS = ("build", "serve", "train", "train-quality-classifier", "explain-filters")


def main(argv: Sequence[str] | None = None) -> int:
    # Beam logs a worker's exception with its traceback before re-raising it.
    logging.getLogger("apache_beam.runners.common").addFilter(UserErrorTracebacks(drop=True))
    logging.getLogger().addFilter(_not_bigquery_notice)
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "build":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if hasattr(signal, "SIGUSR1"):
        # `kill -USR1 <pid>` prints where every thread of a command that seems stuck is.
        with contextlib.suppress(ValueError, OSError):  # stderr that is not a file: no stacks
            faulthandler.register(signal.SIGUSR1, all_threads=True)
    if args.command in _SPAWNING_COMMANDS:
        from flows.processes import die_with_parent, start_guardian

        start_guardian()  # what this command starts ends with it, whatever ends it
        if "TORCHELASTIC_RUN_ID" in os.environ:
            die_with_parent()  # a rank of torchrun ends with torchrun
    try:
        if args.command == "build":
            return cmd_build(args, unknown)
        if args.command == "status":
            return cmd_status(args)
        if args.command == "train":
            return cmd_train(args)
        if args.command == "model-info":
            return cmd_model_info(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "generate":
            return cmd_generate(args)
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "plan":
            return cmd_plan(args)
        if args.command == "train-quality-classifier":
            return cmd_train_classifier(args)
        if args.command == "explain-filters":
            return cmd_explain(args)
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "deploy":
            return cmd_deploy(args)
        return cmd_fetch(args)
    except UserError as exc:
        print(f"llama-recipe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (interpreter exit flushes it)
        return 0


if __name__ == "__main__":
    sys.exit(main())
