"""The decontaminate stage through real Beam on real documents with evaluation examples planted
in them, its pass-through when the recipe has no evaluation sets, and bad task files."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from flows.report import decontamination_rows, report_markdown
from pipelines.document import document_schema
from pipelines.errors import EnvironmentProblem, InputError, RecipeError
from pipelines.preflight import check_models
from pipelines.recipe import load_recipe
from pipelines.stages import STAGE_CLASSES, StageContext, run_stage
from pipelines.store import ReadStage, match_files
from tests.conftest import SAMPLES, SHARED_FIXTURES

pytestmark = pytest.mark.integration

SCIENCE = [
    {
        "id": "sciq-1",
        "context": "A ball is thrown straight up into the air. At the very top of its path, "
        "what is the vertical speed of the ball?",
        "choices": ["zero", "the same as when it was thrown", "twice the starting speed"],
        "gold": 0,
    },
    {
        "id": "sciq-2",
        "context": "Which process in the water cycle turns liquid water from lakes and oceans "
        "into water vapour in the atmosphere?",
        "choices": ["condensation", "evaporation", "precipitation", "infiltration"],
        "gold": 1,
    },
    {
        "id": "sciq-3",  # ten words with its answer: matched whole
        "context": "Which organ pumps blood around the human body?",
        "choices": ["the lungs", "the heart", "the liver", "the kidneys"],
        "gold": 1,
    },
    {"id": "sciq-4", "context": "What is H2O?", "choices": ["water", "salt"], "gold": 0},
]
TRIVIA = [
    {  # no id: named by its line number, 1
        "question": "Which English naturalist published On the Origin of Species in 1859, "
        "setting out the theory of evolution by natural selection?",
        "answers": ["Charles Darwin"],
    },
    {
        "id": "tq-2",
        "question": "What is the name of the longest river in South America?",
        "answers": ["the Amazon", "Amazon River"],
    },
    {
        "id": "tq-3",
        "question": "Who painted the ceiling of the Sistine Chapel?",
        "answers": ["Michelangelo"],
    },
]
# Pasted into real documents: whole, in part (>= 13 words), reformatted (case, line breaks,
# spacing, HTML escapes and tags, curly quotes, accents); the last three must not match.
PLANTS = {
    ("web", 1): "Question: A ball is thrown straight up into the air. At the very top of its "
    "path, what is the vertical speed of the ball?\n(A) zero\n(B) the same as when it was "
    "thrown\n(C) twice the starting speed\nAnswer: A",
    (
        "web",
        4,
    ): "WHICH PROCESS IN THE WATER\nCYCLE   TURNS LIQUID WATER FROM LAKES AND\nOCEANS INTO",
    ("web", 7): "&quot;Which English naturalist published <i>On the Origin of Species</i> in "
    "1859, setting out&nbsp;the theory of evolution by natural selection?&quot; &ndash; "
    "Charles Darwin",
    ("web", 10): "“Which organ pumps blood around the human body?” — The heart.",
    ("web", 13): "Who painted the ceiling of the Sistine Chapel? Michelángelo",
    ("web", 16): "What is the name of the longest river in South America? The Amazon. Which "
    "process in the water cycle turns liquid water from lakes and oceans into water vapour in "
    "the atmosphere? Evaporation.",
    ("books", 1): "Who painted the ceiling of the Sistine Chapel?\n\nMichelangelo.",
    ("web", 19): "a ball is thrown straight up into the air at the very",  # 12 words
    ("web", 22): "What is H2O? Water.",  # too short to check
    ("web", 25): "Who painted the ceiling of the Sistine Chapel, I wonder",
}
EXPECTED = {  # id: (task, example, the words of the first match)
    "web/1": ("sciq", "sciq-1", "a ball is thrown straight up into the air at the very top"),
    "web/4": (
        "sciq",
        "sciq-2",
        "which process in the water cycle turns liquid water from lakes and oceans",
    ),
    "web/7": (
        "trivia",
        "1",
        "which english naturalist published on the origin of species in 1859 setting out",
    ),
    "web/10": ("sciq", "sciq-3", "which organ pumps blood around the human body the heart"),
    "web/13": ("trivia", "tq-3", "who painted the ceiling of the sistine chapel michelangelo"),
    "web/16": (
        "trivia",
        "tq-2",
        "what is the name of the longest river in south america the amazon",
    ),
    "books/1": ("trivia", "tq-3", "who painted the ceiling of the sistine chapel michelangelo"),
}


def real_documents() -> dict[str, list[str]]:
    """Texts of the repository's samples (C4 pages, Gutenberg-style books), and the real C4
    pages of ../shared/fixtures when they are there (more clean documents)."""
    web = [
        json.loads(line)["text"]
        for f in sorted(SAMPLES.glob("c4/*.json.gz"))
        for line in gzip.open(f)
    ]
    shared = SHARED_FIXTURES / "c4" / "olmo-c4-sample.00000-of-00001.json.gz"
    if shared.exists():
        web += [json.loads(line)["text"] for line in gzip.open(shared)]
    books = [p.read_text() for p in sorted(SAMPLES.glob("gutenberg/*.txt"))]
    return {"web": web, "books": books}


def write_recipe(directory: Path, decontamination: dict | None) -> Path:
    recipe = {
        "name": "decontaminate",
        "workdir": str(directory / "work"),
        "sources": {
            name: {"format": "jsonl", "inputs": ["unused"], "weight": 1}
            for name in ("web", "books")
        },
        "mixture": {"total_tokens": 1000},
    }
    if decontamination is not None:
        recipe["decontamination"] = decontamination
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def write_dedup_output(ctx: StageContext, texts: dict[str, list[str]]) -> None:
    """The documents as dedup's committed output, one Parquet file per source."""
    for source, docs in texts.items():
        rows = [{"id": f"{source}/{i}", "source": source, "text": t} for i, t in enumerate(docs)]
        folder = Path(ctx.store.dir("dedup", source))
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(rows, schema=document_schema("dedup"))
        pq.write_table(table, folder / "part-00000-of-00001.parquet")
        manifest = {
            "run_id": uuid.uuid4().hex,
            "counts": {"input": len(rows), "kept": len(rows), "rejected": 0},
            "kept_text_chars": sum(len(t) for t in docs),
        }
        ctx.store.write_manifest("dedup", source, manifest)


def read(pattern: str) -> list[dict]:
    return [row for path in match_files(pattern) for row in pq.read_table(path).to_pylist()]


def write_tasks(directory: Path) -> dict:
    for name, records in (("science", SCIENCE), ("trivia", TRIVIA)):
        lines = "".join(json.dumps(r) + "\n" for r in records)
        (directory / f"{name}.jsonl").write_text(lines)
    return {"eval_sets": ["sciq=science.jsonl", "trivia.jsonl"]}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    directory = tmp_path_factory.mktemp("decontaminate")
    texts = real_documents()
    for (source, index), snippet in PLANTS.items():
        paragraphs = texts[source][index].split("\n\n")
        middle = len(paragraphs) // 2
        texts[source][index] = "\n\n".join([*paragraphs[:middle], snippet, *paragraphs[middle:]])
    ctx = StageContext.from_recipe(load_recipe(write_recipe(directory, write_tasks(directory))))
    write_dedup_output(ctx, texts)
    results = run_stage(STAGE_CLASSES["decontaminate"](), ctx, ["web", "books"])
    return ctx, texts, {r.source: r for r in results}


def test_planted_examples_are_removed_and_clean_documents_kept(planted):
    ctx, texts, results = planted
    rejects = read(ctx.store.rejects("decontaminate", "web")) + read(
        ctx.store.rejects("decontaminate", "books")
    )
    found = {r["id"]: (r["reason"], r["detail"]) for r in rejects}
    assert found == {
        key: (f"decontaminate:{task}", f'example {example}: "{words}"')
        for key, (task, example, words) in EXPECTED.items()
    }
    kept = read(ctx.store.parts("decontaminate", "web")) + read(
        ctx.store.parts("decontaminate", "books")
    )
    clean = {f"{s}/{i}": t for s, docs in texts.items() for i, t in enumerate(docs)}
    clean = {key: text for key, text in clean.items() if key not in EXPECTED}
    assert len(clean) >= 40
    assert {d["id"]: d["text"] for d in kept} == clean  # every one, unchanged
    assert results["web"].manifest["counts"] == {
        "input": len(texts["web"]),
        "kept": len(texts["web"]) - 6,
        "rejected": 6,
    }


def test_the_manifest_says_what_was_found_per_task(planted):
    ctx, _, results = planted
    web = results["web"].manifest["decontamination"]
    assert web["sciq"] == {
        "examples": 4,
        "too_short": 1,
        "examples_found": 3,
        "documents_removed": 3,
        "found": {"sciq-1": 1, "sciq-2": 2, "sciq-3": 1},  # web/16 holds sciq-2 after tq-2
    }
    assert web["trivia"] == {
        "examples": 3,
        "too_short": 0,
        "examples_found": 3,
        "documents_removed": 3,
        "found": {"1": 1, "tq-2": 1, "tq-3": 1},
    }
    books = results["books"].manifest["decontamination"]
    assert books["trivia"]["found"] == {"tq-3": 1} and books["sciq"]["examples_found"] == 0
    recipe = load_recipe(Path(ctx.store.workdir).parent / "recipe.yaml")
    rows = {row["task"]: row for row in decontamination_rows(recipe)}
    assert rows["trivia"]["found in any source"] == 3
    assert rows["trivia"]["books: found / removed"] == "1 examples / 1 documents"
    assert rows["sciq"]["web: found / removed"] == "3 examples / 3 documents"
    assert "## decontamination" in report_markdown(recipe)


def test_a_second_run_is_cached_and_a_changed_task_file_reruns(planted, tmp_path):
    ctx, _, _ = planted
    stage = STAGE_CLASSES["decontaminate"]()
    assert {r.status for r in run_stage(stage, ctx, ["web", "books"])} == {"skipped"}
    task_file = Path(ctx.store.workdir).parent / "trivia.jsonl"
    before = stage.fingerprint(ctx, "books")
    task_file.write_text(task_file.read_text() + json.dumps(TRIVIA[0]) + "\n")
    assert stage.fingerprint(ctx, "books") != before


def test_without_evaluation_sets_dedups_documents_pass_through_uncopied(tmp_path, monkeypatch):
    texts = {"web": ["one document", "another one"], "books": ["a book"]}
    ctx = StageContext.from_recipe(load_recipe(write_recipe(tmp_path, None)))
    write_dedup_output(ctx, texts)
    stage = STAGE_CLASSES["decontaminate"]()

    def no_pipeline(*args, **kwargs):
        raise AssertionError("a pass-through builds no pipeline")

    with monkeypatch.context() as patched:
        patched.setattr(beam, "Pipeline", no_pipeline)
        results = run_stage(stage, ctx, ["web", "books"])
    manifest = results[0].manifest
    assert manifest["passthrough"] == "dedup" and results[0].status == "ran"
    assert manifest["counts"] == {"input": 2, "kept": 2, "rejected": 0}
    assert manifest["kept_text_chars"] == len("one document") + len("another one")
    assert [p.name for p in Path(ctx.store.dir("decontaminate", "web")).iterdir()] == [
        "_MANIFEST.json"
    ]
    # What reads the stage reads dedup's files.
    assert ctx.store.parts("decontaminate", "web") == ctx.store.parts("dedup", "web")
    assert ReadStage(ctx.store, "decontaminate", "web").pattern == ctx.store.parts("dedup", "web")
    assert {r.status for r in run_stage(stage, ctx, ["web", "books"])} == {"skipped"}
    write_dedup_output(ctx, {"web": texts["web"]})  # dedup ran again: a new run id
    assert [r.status for r in run_stage(stage, ctx, ["web", "books"])] == ["ran", "skipped"]

    # Evaluation sets added: it checks and writes; removed again: back to passing through.
    with_sets = StageContext.from_recipe(load_recipe(write_recipe(tmp_path, write_tasks(tmp_path))))
    assert run_stage(stage, with_sets, ["web"])[0].manifest.get("passthrough") is None
    assert len(read(with_sets.store.parts("decontaminate", "web"))) == 2
    run_stage(stage, StageContext.from_recipe(load_recipe(write_recipe(tmp_path, None))), ["web"])
    assert match_files(str(Path(ctx.store.dir("decontaminate", "web")) / "*.parquet")) == []
    assert ctx.store.parts("decontaminate", "web") == ctx.store.parts("dedup", "web")


def test_a_bad_task_file_is_one_error_naming_its_line(tmp_path):
    (tmp_path / "tasks.jsonl").write_text(
        json.dumps(TRIVIA[1]) + "\n" + '{"question": "q", "answers": []}\n'
    )
    recipe = load_recipe(write_recipe(tmp_path, {"eval_sets": ["tasks.jsonl"]}))
    ctx = StageContext.from_recipe(recipe)
    write_dedup_output(ctx, {"web": ["text"], "books": ["text"]})
    with pytest.raises(InputError) as caught:
        run_stage(STAGE_CLASSES["decontaminate"](), ctx, ["web"])
    assert str(caught.value) == (
        f"decontamination: {tmp_path / 'tasks.jsonl'}:2: "
        '"answers" must be a non-empty list of strings'
    )
    assert ctx.store.read_manifest("decontaminate", "web") is None
    (tmp_path / "tasks.jsonl").unlink()
    with pytest.raises(EnvironmentProblem, match="decontamination.eval_sets: .* not found"):
        check_models(recipe, ["decontaminate"], ["web"])


@pytest.mark.parametrize(
    "section, problem",
    [
        ({"eval_sets": ["a/x.jsonl", "b/x.jsonl.gz"]}, "two task files named 'x'"),
        ({"eval_sets": ["x.jsonl"], "ngram": 5}, r"min_words \(8\) must be at most ngram \(5\)"),
        ({"eval_sets": []}, "eval_sets"),
    ],
)
def test_the_recipe_checks_its_decontamination_section(tmp_path, section, problem):
    with pytest.raises(RecipeError, match=problem):
        load_recipe(write_recipe(tmp_path, section))
