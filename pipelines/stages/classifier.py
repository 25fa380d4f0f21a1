"""train-classifier: LLaMA's reference classifier, trained on the recipe's positives (e.g.
Wikipedia) and negatives (random CommonCrawl), measured on a held-out split, written with its
model card. Beam draws a bounded, deterministic sample per class; fastText trains on the
driver, as SentencePiece does for the tokenizer (both are single-process by nature)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import fasttext

from filters.quality_classifier import (
    NEGATIVE,
    POSITIVE,
    ClassifierTrainingConfig,
    classifier_text,
    evaluate,
    model_card_markdown,
    positive_probabilities,
    sha256_file,
    train_fasttext,
)
from pipelines.assets import TRAINED_ON, model_file
from pipelines.document import unit_hash
from pipelines.errors import InputError, UserError
from pipelines.stage import Stage, StageContext, require_manifest
from pipelines.store import ALL_SOURCES, ReadStage, file_metadata, match_files

CARD_JSON = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"


def _jsonl_document(item: tuple[str, str]) -> Iterator[dict[str, str]]:
    path, line = item
    if not line.strip():
        return
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise InputError(f'{path}: every line must be a JSON object with a "text" string')
    text = record["text"]
    yield {"id": record.get("id") or f"jsonl/{unit_hash('text', text)}", "text": text}


class TrainClassifierStage(Stage):
    name = "train-classifier"

    def __init__(self, required: bool = False):
        self.required = required  # run even when no filter of the recipe uses the classifier

    def training(self, ctx: StageContext) -> ClassifierTrainingConfig:
        config = ctx.recipe.quality_classifier
        if config is None:
            raise UserError("the recipe has no `quality_classifier` section to train from")
        return config

    def needed(self, ctx: StageContext) -> bool:
        return self.required or ctx.recipe.classifier_needed()

    def config(self, ctx: StageContext, source: str) -> Any:
        return self.training(ctx).model_dump(mode="json")

    def upstream_manifests(self, ctx: StageContext, source: str) -> list[dict[str, Any]]:
        return [
            require_manifest(ctx, "langid", s, self.name) for s in ctx.recipe.classifier_sources()
        ]

    def inputs_identity(self, ctx: StageContext, source: str) -> Any:
        config = self.training(ctx)
        files = [
            file_metadata(p)
            for p in config.positives + config.negatives
            if p not in ctx.recipe.sources
        ]
        return [m["run_id"] for m in self.upstream_manifests(ctx, source)] + files

    def prepare(self, ctx: StageContext, sources: Any) -> None:
        config = self.training(ctx)
        for item in config.positives + config.negatives:
            if item not in ctx.recipe.sources and not match_files(item):
                raise UserError(f"quality_classifier: {item}: no file matches")

    def expand(
        self, pipeline: beam.Pipeline, ctx: StageContext, source: str, prepared: Any
    ) -> None:
        config = self.training(ctx)
        seed, max_chars = config.seed, config.max_chars
        for label, items in ((POSITIVE, config.positives), (NEGATIVE, config.negatives)):
            tag = label.removeprefix("__label__")
            branches = []
            for i, item in enumerate(items):
                step = f"{tag}/{i}"
                if item in ctx.recipe.sources:
                    branches.append(
                        pipeline
                        | f"{step}/Read"
                        >> ReadStage(ctx.store, "langid", item, columns=["id", "text"])
                        | f"{step}/Rows" >> beam.FlatMap(lambda t: t.to_pylist())
                    )
                else:
                    branches.append(
                        pipeline
                        | f"{step}/Read" >> beam.io.ReadFromTextWithFilename(item)
                        | f"{step}/Parse" >> beam.FlatMap(_jsonl_document)
                    )
            (
                branches
                | f"{tag}/Merge" >> beam.Flatten()
                | f"{tag}/Key"
                >> beam.Map(
                    lambda d: (
                        unit_hash(seed, "classifier-sample", d["id"]),
                        d["id"],
                        (d["text"] or "")[:max_chars],
                    )
                )
                # A fixed-size sample per class, the same on every runner.
                | f"{tag}/Sample" >> beam.combiners.Top.Smallest(config.max_documents_per_class)
                | f"{tag}/Flatten" >> beam.FlatMap(lambda rows: rows)
                | f"{tag}/Json" >> beam.Map(lambda r, lb=label: json.dumps([r[0], r[1], lb, r[2]]))
                | f"{tag}/Write"
                >> beam.io.WriteToText(
                    ctx.store.path(self.name, ALL_SOURCES, f"sample-{tag}"),
                    file_name_suffix=".jsonl",
                )
            )

    def summarize(
        self, ctx: StageContext, source: str, metrics: dict[str, int], prepared: Any
    ) -> dict[str, Any]:
        config = self.training(ctx)
        rows = []
        for path in match_files(ctx.store.path(self.name, ALL_SOURCES, "sample-*.jsonl")):
            rows += [json.loads(line) for line in ctx.store.read_bytes(path).decode().splitlines()]
        rows.sort()  # by sample hash: a fixed training order, whatever the runner wrote
        halves: list[list[tuple[str, str, str]]] = [[], []]
        for _, doc_id, label, text in rows:
            half = int(unit_hash(config.seed, "classifier-half", doc_id) >= 0.5)
            halves[half].append((doc_id, label, classifier_text(text, config.max_chars)))
        for k, half in enumerate(halves):
            if {label for _, label, _ in half} != {POSITIVE, NEGATIVE}:
                raise UserError(
                    f"train-classifier: half {k} of the sample needs positive and negative "
                    f"documents (the sample has {len(rows)}; give more data)"
                )
        models, labels, scores = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            for k, half in enumerate(halves):
                train_file = os.path.join(tmp, f"train-{k}.txt")
                with open(train_file, "w", encoding="utf-8") as fh:
                    fh.writelines(f"{label} {line}\n" for _, label, line in half)
                local = os.path.join(tmp, model_file(k))
                try:
                    train_fasttext(train_file, config, local)
                except RuntimeError as exc:  # fastText reports divergence as "Encountered NaN"
                    raise UserError(
                        f"train-classifier: fastText failed ({exc}); try a lower "
                        "quality_classifier.lr or fewer epochs"
                    ) from None
                model = fasttext.load_model(local)
                # Scored on the other half: documents this model never saw.
                other = halves[1 - k]
                labels += [label == POSITIVE for _, label, _ in other]
                scores += positive_probabilities(model, [line for _, _, line in other]).tolist()
                with open(local, "rb") as fh:
                    ctx.store.write_bytes(
                        ctx.store.path(self.name, ALL_SOURCES, model_file(k)), fh.read()
                    )
                models.append(
                    {
                        "file": model_file(k),
                        "size_bytes": os.path.getsize(local),
                        "sha256": sha256_file(local),
                        "words": len(model.words),
                        "trained_on": len(half),
                    }
                )
        trained_on = {str(k): [doc_id for doc_id, _, _ in half] for k, half in enumerate(halves)}
        ctx.store.write_bytes(
            ctx.store.path(self.name, ALL_SOURCES, TRAINED_ON), json.dumps(trained_on).encode()
        )
        card = {
            "data": {
                "positives": config.positives,
                "negatives": config.negatives,
                "max_documents_per_class": config.max_documents_per_class,
                "seed": config.seed,
            },
            "metrics": evaluate(labels, scores, config.threshold),
            "models": models,
            "settings": {
                k: getattr(config, k)
                for k in ("epoch", "lr", "dim", "word_ngrams", "min_count", "bucket")
            },
        }
        ctx.store.write_bytes(
            ctx.store.path(self.name, ALL_SOURCES, CARD_JSON), json.dumps(card, indent=2).encode()
        )
        ctx.store.write_bytes(
            ctx.store.path(self.name, ALL_SOURCES, CARD_MARKDOWN),
            model_card_markdown(card).encode(),
        )
        return {"counts": {"input": len(rows), "kept": len(rows), "rejected": 0}, **card}
