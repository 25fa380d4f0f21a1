"""What docs/scale-out.md says is tested here, without a cluster and in a few seconds:

- every transform of every stage goes through what a distributed runner does with it (the
  pipeline turned into Beam's portable form on the driver, each pickled function loaded back
  as a worker loads it), and none of them carries a model or a corpus;
- the runner blocks and command lines in docs/scale-out.md name options that Beam and
  `llama-recipe` know;
- the stage store, the workdir lease, model copies and a real extract work on an object store
  through Beam's filesystems, on a local stand-in with an object store's semantics; two known
  gaps there are expected failures until they are fixed.

Beam's multi-process runner (workers in other processes, transforms pickled and elements
encoded) runs whole builds in tests/pipelines/test_stages.py, tests/dedup/test_near_dedup.py
and tests/faults.
"""

from __future__ import annotations

import base64
import bz2
import json
import os
import re
import shlex
import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from apache_beam.internal import pickler
from apache_beam.io.filesystem import BeamIOError, CompressionTypes, FileMetadata, FileSystem
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.localfilesystem import LocalFileSystem
from apache_beam.metrics.execution import MetricKey, MetricResult
from apache_beam.metrics.metric import MetricName
from apache_beam.options.pipeline_options import (
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)
from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.pipeline_context import PipelineContext

from flows.cli import _parser as cli_parser
from flows.recipe import load_recipe
from pipelines.assets import local_copy
from pipelines.beam_io import pipeline_options
from pipelines.document import document_schema, reject_schema, token_schema
from pipelines.lease import WorkdirLease
from pipelines.preflight import check_workdir_writable
from pipelines.recipe import MixtureConfig, RunnerConfig
from pipelines.registry import STAGES, spec
from pipelines.shards import MIXTURE_JSON
from pipelines.stage import _counters
from pipelines.stages import STAGE_CLASSES, StageContext, run_stage
from pipelines.stages.extract import expand_inputs
from pipelines.store import (
    ALL_SOURCES,
    StageStore,
    file_metadata,
    ipc_rows,
    match_files,
    parquet_rows,
    reject_reasons,
)
from tests.conftest import ROOT, write_recipe

# A pickled function larger than this carries data it should read on the worker instead.
MAX_PICKLED_BYTES = 1 << 20

# ---------------------------------------------------------------------------------------------
# Every transform through Beam's pickler
# ---------------------------------------------------------------------------------------------

# The sample recipe cut to the sources that take every branch of the stages' code: WET with
# perplexity, the reference classifier and CCNet line dedup; a split reader (MediaWiki); an
# assembler (StackExchange).
GRAPH_SOURCES = ("commoncrawl", "wikipedia", "stackexchange")
# Per-source stages build these sources' branches (the others build the same transforms with
# other settings); extract builds one per kind of reader.
BUILT_FOR = {"extract": ("wikipedia", "stackexchange"), "default": ("commoncrawl",)}
# The DoFns that load a model, and what their `setup` fills on a worker: none of it may travel
# with the pickled function. Each of these stages must have its DoFn in its graph.
MODEL_DOFNS = {
    "langid": ("LangIdFn", ("identifier",)),
    "quality": ("ScoreFn", ("chain",)),
    "tokenize": ("TokenizeFn", ("processor",)),
    "decontaminate": ("DecontaminateFn", ("index",)),
}
PROJECT_PACKAGES = ("pipelines", "filters", "dedup")


def _stand_in_output(ctx: StageContext, stage: str, source: str) -> None:
    """A committed one-document output of `stage`, so that the next stage's graph is built as
    it is after a real run (its reads find files and manifests); nothing is run."""
    store = ctx.store
    os.makedirs(store.dir(stage, source), exist_ok=True)
    if stage == "tokenize":
        schema = token_schema(ctx.recipe.tokenizer.vocab_size)
        row = {"id": f"{source}/0", "source": source, "num_tokens": 3, "tokens": [5, 6, 7]}
        with pa.ipc.new_file(store.path(stage, source, "part-00000-of-00001.arrow"), schema) as w:
            w.write_table(pa.Table.from_pylist([row], schema))
    elif spec(stage).per_source:
        schema = document_schema(stage)
        row = {field.name: None for field in schema}
        row.update(id=f"{source}/0", source=source, text="one two three")
        part = store.path(stage, source, "part-00000-of-00001.parquet")
        pq.write_table(pa.Table.from_pylist([row], schema), part)
    counts = {"input": 1, "kept": 1, "rejected": 0}
    manifest = {"run_id": uuid.uuid4().hex, "counts": counts, "kept_text_chars": 13, "tokens": 3}
    store.write_manifest(stage, source, manifest)


def _pickled_functions(proto: beam_runner_api_pb2.Pipeline) -> dict[str, bytes]:
    """Transform name -> the pickled DoFn or CombineFn a worker loads for it."""
    found = {}
    for transform in proto.components.transforms.values():
        if transform.spec.urn == common_urns.primitives.PAR_DO.urn:
            fn = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload).do_fn
            wanted = python_urns.PICKLED_DOFN_INFO
        elif transform.spec.urn in (
            common_urns.composites.COMBINE_PER_KEY.urn,
            common_urns.composites.COMBINE_GLOBALLY.urn,
        ):
            fn = beam_runner_api_pb2.CombinePayload.FromString(transform.spec.payload).combine_fn
            wanted = python_urns.PICKLED_COMBINE_FN
        else:
            continue
        if fn.urn == wanted:  # Beam's own built-ins (KeyWithVoid) are named by urn alone
            found[transform.unique_name] = fn.payload
    return found


@pytest.fixture(scope="module")
def stage_graphs(tmp_path_factory) -> dict[str, beam_runner_api_pb2.Pipeline]:
    """Each stage's pipeline for the cut sample recipe, built by the stage's own `prepare` and
    `build` and turned into Beam's portable form, as a runner submits it; never run."""
    path = write_recipe(tmp_path_factory.mktemp("graphs"))
    data = yaml.safe_load(path.read_text())
    data["sources"] = {name: data["sources"][name] for name in GRAPH_SOURCES}
    # Evaluation sets, so that decontaminate builds its pipeline instead of passing through.
    example = {"question": "Which river flows through ten countries?", "answers": ["Danube"]}
    (path.parent / "trivia.jsonl").write_text(json.dumps(example) + "\n")
    data["decontamination"] = {"eval_sets": ["trivia.jsonl"]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    recipe = load_recipe(path)
    ctx = StageContext.from_recipe(recipe)
    graphs = {}
    for name in STAGES:
        stage = STAGE_CLASSES[name]()
        if stage.per_source:
            built = list(BUILT_FOR.get(name, BUILT_FOR["default"]))
        else:
            built = [ALL_SOURCES]
        pipeline = beam.Pipeline(options=pipeline_options(recipe))
        stage.build(pipeline, ctx, built, stage.prepare(ctx, built))
        graphs[name] = pipeline.to_runner_api()
        for source in recipe.sources if stage.per_source else [ALL_SOURCES]:
            _stand_in_output(ctx, name, source)
    return graphs


@pytest.mark.parametrize("stage", STAGES)
def test_every_transform_of_a_stage_survives_the_pickler_and_stays_small(stage_graphs, stage):
    proto = stage_graphs[stage]
    functions = _pickled_functions(proto)
    assert functions
    loaded = {}
    for name, payload in functions.items():
        # Beam ships a pickle bz2-compressed: the bound is on what a worker holds once loaded.
        size = len(bz2.decompress(base64.b64decode(payload)))
        assert size < MAX_PICKLED_BYTES, f"{name}: {size:,} bytes pickled"
        fn = pickler.loads(payload)
        loaded[name] = fn[0] if isinstance(fn, tuple) else fn  # a DoFn comes with its arguments
    # Every coder a worker decodes elements with loads too.
    context = PipelineContext(proto.components)
    for coder_id in proto.components.coders:
        context.coders.get_by_id(coder_id)
    # The stage's own code is among them (a Map's function, or a DoFn of the project).
    origins = {getattr(fn, "_fn", fn).__module__.split(".")[0] for fn in loaded.values()}
    assert origins & set(PROJECT_PACKAGES), origins
    if stage in MODEL_DOFNS:
        cls, filled_by_setup = MODEL_DOFNS[stage]
        with_model = [fn for fn in loaded.values() if type(fn).__name__ == cls]
        assert with_model, f"no {cls} in the {stage} graph"
        for fn in with_model:  # the model is loaded on the worker, never shipped with the fn
            assert not [name for name in filled_by_setup if hasattr(fn, name)]


def test_counters_fall_back_to_attempted_values_where_a_runner_commits_none():
    """Flink reports attempted metric values only; a manifest's counters must not read 0."""

    def counter(name, committed, attempted):
        key = MetricKey("step", MetricName("tokenize/c4", name))
        return MetricResult(key, committed, attempted)

    class Result:
        def metrics(self):
            counters = [counter("tokens", None, 7), counter("tokens", None, 5)]
            counters.append(counter("kept_text_chars", 30, 31))
            return SimpleNamespace(query=lambda _filter: {"counters": counters})

    assert _counters(Result(), "tokenize/c4") == {"tokens": 12, "kept_text_chars": 30}


# ---------------------------------------------------------------------------------------------
# The runner blocks and commands in docs/scale-out.md
# ---------------------------------------------------------------------------------------------

SCALE_OUT = ROOT / "docs" / "scale-out.md"


def _code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SCALE_OUT.read_text(), flags=re.S)


def _commands(program: str) -> list[list[str]]:
    """Every `program ...` command of the doc's shell blocks, as argv after the program."""
    found = []
    for block in _code_blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            named = [i for i, word in enumerate(words) if word.rsplit("/", 1)[-1] == program]
            if named:
                found.append(words[named[0] + 1 :])
    return found


def _unknown_to_beam(flags: list[str]) -> list[str]:
    parsers = []
    PipelineOptions(flags).get_all_options(add_extra_args_fn=parsers.append)
    _, unknown = parsers[0].parse_known_args(flags)
    return [flag for flag in unknown if flag.startswith("-")]


def test_the_docs_runner_blocks_name_beam_runners_and_options():
    blocks = [yaml.safe_load(b) for b in _code_blocks("yaml")]
    runners = [b["runner"] for b in blocks if isinstance(b, dict) and "runner" in b]
    assert {r["name"] for r in runners} >= {"DataflowRunner", "FlinkRunner", "SparkRunner"}
    for block in runners:
        config = RunnerConfig.model_validate(block)
        assert config.name in StandardOptions.KNOWN_RUNNER_NAMES
        options = pipeline_options(SimpleNamespace(runner=config))
        assert not _unknown_to_beam(options._flags)  # the flags the recipe's block becomes
        assert options.view_as(StandardOptions).runner == config.name


def test_recipe_options_that_are_false_turn_beams_switches_off():
    options = {"use_public_ips": False, "save_main_session": False, "num_workers": 3}
    runner = RunnerConfig(name="DataflowRunner", options=options)
    beam_options = pipeline_options(SimpleNamespace(runner=runner))
    assert beam_options.view_as(WorkerOptions).use_public_ips is False
    assert beam_options.view_as(SetupOptions).save_main_session is False
    assert beam_options.view_as(WorkerOptions).num_workers == 3


def test_the_docs_commands_use_flags_llama_recipe_and_beam_know():
    commands = _commands("llama-recipe")
    assert any(argv[0] == "build" for argv in commands)
    for argv in commands:
        args, unknown = cli_parser().parse_known_args(argv)
        if args.command == "build":
            assert not _unknown_to_beam(unknown), argv
        else:
            assert not unknown, argv


# ---------------------------------------------------------------------------------------------
# An object store through Beam's filesystems
# ---------------------------------------------------------------------------------------------

PREFIX = "teststore://"


class ObjectStoreStandIn(FileSystem):
    """`teststore://bucket/key`: an object store as Beam's GCS and S3 filesystems present one,
    kept in a local folder. Keys and prefixes, no folders: `exists` is true of an object only,
    listing is by key prefix, deleting `prefix/` deletes every object under it while deleting
    a path without the slash deletes that object alone, and nothing to delete is no error.

    Registered with Beam by being defined: the in-process runner sees it, worker processes of
    other runners would not (they never import this module)."""

    root = ""  # the local folder holding the objects (the `object_store` fixture sets it)
    needs_options = False  # True: refuse to work without pipeline options, as S3's does

    def __init__(self, pipeline_options=None):
        if self.needs_options and pipeline_options is None:
            raise ValueError("Must provide one of client or options")  # S3's words
        super().__init__(pipeline_options)
        self._local = LocalFileSystem(pipeline_options)

    @classmethod
    def scheme(cls) -> str:
        return "teststore"

    def _file(self, path: str) -> str:
        assert path.startswith(PREFIX) and self.root, path
        return os.path.join(self.root, path[len(PREFIX) :])

    def _objects(self, prefix: str) -> list[FileMetadata]:
        found = []
        for folder, _, names in os.walk(self.root):
            for name in names:
                key = os.path.relpath(os.path.join(folder, name), self.root)
                path = PREFIX + key.replace(os.sep, "/")
                if path.startswith(prefix):
                    found.append(self.metadata(path))
        return found

    def join(self, basepath: str, *paths: str) -> str:
        for part in paths:
            basepath = basepath.rstrip("/") + "/" + part.lstrip("/")
        return basepath

    def split(self, path: str) -> tuple[str, str]:
        head, slash, tail = path.strip().rpartition("/")
        return (head, tail) if slash and len(head) >= len(PREFIX) else (path, "")

    def mkdirs(self, path: str) -> None:
        pass  # no folders to make

    def has_dirs(self) -> bool:
        return False

    def _list(self, dir_or_prefix: str):
        return iter(self._objects(dir_or_prefix))

    def create(self, path, mime_type="application/octet-stream", compression_type=None):
        compression_type = compression_type or CompressionTypes.AUTO
        return self._local.create(self._file(path), mime_type, compression_type)

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        compression_type = compression_type or CompressionTypes.AUTO
        return self._local.open(self._file(path), mime_type, compression_type)

    def copy(self, source_file_names, destination_file_names):
        for source, destination in zip(source_file_names, destination_file_names, strict=True):
            if source.endswith("/"):
                for item in self._objects(source):
                    self.copy([item.path], [destination + item.path[len(source) :]])
                continue
            if not self.exists(source):
                raise BeamIOError("Copy operation failed", {(source, destination): source})
            os.makedirs(os.path.dirname(self._file(destination)), exist_ok=True)
            shutil.copyfile(self._file(source), self._file(destination))

    def rename(self, source_file_names, destination_file_names):
        self.copy(source_file_names, destination_file_names)  # an object store copies...
        self.delete(source_file_names)  # ...then deletes

    def exists(self, path: str) -> bool:
        return os.path.isfile(self._file(path))

    def size(self, path: str) -> int:
        return self.metadata(path).size_in_bytes

    def last_updated(self, path: str) -> float:
        return self.metadata(path).last_updated_in_seconds

    def checksum(self, path: str) -> str:
        return str(self.size(path))

    def metadata(self, path: str) -> FileMetadata:
        if not self.exists(path):
            raise BeamIOError("Metadata operation failed", {path: "no such object"})
        stat = os.stat(self._file(path))
        return FileMetadata(path, stat.st_size, stat.st_mtime)

    def delete(self, paths):
        for path in paths:
            prefix = path if path.endswith("/") else None
            targets = self._objects(prefix) if prefix else self.match([path])[0].metadata_list
            for item in targets:
                os.remove(self._file(item.path))


@pytest.fixture
def object_store(tmp_path, monkeypatch) -> str:
    """A bucket on the stand-in object store, empty; its URI."""
    monkeypatch.setattr(ObjectStoreStandIn, "root", str(tmp_path / "objects"))
    os.makedirs(ObjectStoreStandIn.root)
    return f"{PREFIX}bucket"


def _write_parquet(path: str, rows: list[dict], schema: pa.Schema) -> None:
    with FileSystems.create(path) as fh:
        pq.write_table(pa.Table.from_pylist(rows, schema), fh)


def _extract_rows(source: str, count: int) -> list[dict]:
    schema = document_schema("extract")
    base = {field.name: None for field in schema}
    return [{**base, "id": f"{source}/{i}", "source": source, "text": "x"} for i in range(count)]


def test_the_stage_store_works_on_an_object_store(object_store, monkeypatch):
    store = StageStore(f"{object_store}/work")
    check_workdir_writable(store.workdir)  # a probe object written and deleted
    assert match_files(f"{store.workdir}/**") == []
    # Kept rows, rejects and token rows, as the stages write them.
    documents, rejects = document_schema("extract"), reject_schema("extract")
    for name, count in (("part-00000-of-00002.parquet", 2), ("part-00001-of-00002.parquet", 1)):
        _write_parquet(store.path("extract", "c4", name), _extract_rows("c4", count), documents)
    rejected = [{**row, "reason": "extract:bad_json"} for row in _extract_rows("c4", 1)]
    _write_parquet(store.path("extract", "c4", "rejects", "part-0.parquet"), rejected, rejects)
    schema = token_schema(1024)
    with FileSystems.create(store.path("tokenize", "c4", "part-0.arrow")) as fh:
        with pa.ipc.new_file(fh, schema) as writer:
            row = {"id": "c4/0", "source": "c4", "num_tokens": 2, "tokens": [4, 5]}
            writer.write_table(pa.Table.from_pylist([row, row], schema))
    assert parquet_rows(store.parts("extract", "c4")) == 3
    assert reject_reasons(store.rejects("extract", "c4")) == {"extract:bad_json": 1}
    assert ipc_rows(store.parts("tokenize", "c4", ".arrow")) == 2
    listed = file_metadata(store.parts("extract", "c4"))  # not the rejects below them
    assert [path.rsplit("/", 1)[-1] for path, _, _ in listed] == [
        "part-00000-of-00002.parquet",
        "part-00001-of-00002.parquet",
    ]
    assert all(size > 0 for _, size, _ in listed)
    # Manifests: written whole under their name (through a temporary object), read, forgotten.
    assert store.read_manifest("extract", "c4") is None
    store.write_manifest("extract", "c4", {"fingerprint": "f1", "counts": {"kept": 3}})
    assert store.is_current("extract", "c4", "f1") and not store.is_current("extract", "c4", "f2")
    assert match_files(f"{store.workdir}/**.partial-*") == []
    store.write_bytes(store.tokenizer_model(), b"model")
    assert store.read_bytes(store.tokenizer_model()) == b"model"
    store.forget("extract", "c4")
    assert store.read_manifest("extract", "c4") is None
    # The workdir lease, kept in the workdir itself.
    monkeypatch.setattr("pipelines.lease.OBJECT_STORE_SETTLE_S", 0.01)
    with WorkdirLease(store.workdir, "a test", say=lambda line: None):
        assert FileSystems.exists(f"{store.workdir}/_LEASE.json")
    assert not FileSystems.exists(f"{store.workdir}/_LEASE.json")


def test_a_model_on_an_object_store_is_copied_to_local_disk_for_its_library(object_store):
    """fastText, KenLM and SentencePiece open local files: a worker copies the model first."""
    location = f"{object_store}/models/lid.176.ftz"
    with FileSystems.create(location) as fh:
        fh.write(b"model bytes")
    local = local_copy(location)
    try:
        assert not local.startswith(PREFIX) and Path(local).read_bytes() == b"model bytes"
    finally:
        os.remove(local)


def test_clearing_a_stage_on_an_object_store_deletes_its_files(object_store):
    store = StageStore(f"{object_store}/work")
    part = store.path("extract", "c4", "part-00000-of-00001.parquet")
    _write_parquet(part, _extract_rows("c4", 1), document_schema("extract"))
    store.write_manifest("extract", "c4", {"fingerprint": "f1"})
    store.clear("extract", "c4")
    assert store.read_manifest("extract", "c4") is None
    assert match_files(store.parts("extract", "c4")) == []


def test_mix_keeps_only_its_newest_versions_on_an_object_store(object_store):
    store = StageStore(f"{object_store}/work")
    for version in ("v1", "v2", "v3", "v4"):
        for name in ("shard-00000.arrow", MIXTURE_JSON):
            with FileSystems.create(FileSystems.join(store.mix_dir(), version, name)) as fh:
                fh.write(b"{}")
    ctx = SimpleNamespace(
        store=store, recipe=SimpleNamespace(mixture=MixtureConfig(total_tokens=1))
    )
    STAGE_CLASSES["mix"]().after_commit(ctx, ALL_SOURCES, "v4")
    kept = match_files(FileSystems.join(store.mix_dir(), "*", MIXTURE_JSON))
    assert [path.rsplit("/", 2)[-2] for path in kept] == ["v2", "v3", "v4"]


def _remote_recipe(object_store: str, folder: Path) -> Path:
    """A one-source recipe with its JSON lines input and its workdir on the object store."""
    lines = [json.dumps({"id": f"d{i}", "text": f"document number {i}"}) for i in range(5)]
    with FileSystems.create(f"{object_store}/raw/part-0.jsonl") as fh:
        fh.write(("\n".join([*lines, "{not json"]) + "\n").encode())
    source = {"format": "jsonl", "inputs": [f"{object_store}/raw/*.jsonl"], "weight": 1}
    recipe = {
        "name": "remote",
        "workdir": f"{object_store}/work",
        "sources": {"docs": source},
        "mixture": {"total_tokens": 1000},
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_the_driver_hands_the_recipes_options_to_beams_filesystems(
    object_store, tmp_path, monkeypatch
):
    """S3's filesystem refuses to work without pipeline options, and the driver lists the
    inputs and probes the workdir before any pipeline exists: loading the recipe gives them."""
    recipe_path = _remote_recipe(object_store, tmp_path)
    monkeypatch.setattr(FileSystems, "_pipeline_options", None)
    monkeypatch.setattr(ObjectStoreStandIn, "needs_options", True)
    with pytest.raises(ValueError):
        FileSystems.exists(f"{object_store}/anything")
    recipe = load_recipe(recipe_path)
    check_workdir_writable(recipe.workdir)
    assert [path for path, _, _ in expand_inputs(StageContext.from_recipe(recipe), "docs")] == [
        f"{object_store}/raw/part-0.jsonl"
    ]


@pytest.mark.integration
def test_extract_reads_and_writes_an_object_store(object_store, tmp_path):
    """A real stage on the in-process runner with its inputs and its workdir on the store."""
    recipe = load_recipe(_remote_recipe(object_store, tmp_path))
    ctx = StageContext.from_recipe(recipe)
    (result,) = run_stage(STAGE_CLASSES["extract"](), ctx, ["docs"])
    assert result.status == "ran"
    assert result.manifest["counts"] == {"input": 6, "kept": 5, "rejected": 1}
    assert result.manifest["kept_text_chars"] == sum(len(f"document number {i}") for i in range(5))
    assert (
        ctx.store.read_manifest("extract", "docs")["fingerprint"] == result.manifest["fingerprint"]
    )
    assert parquet_rows(ctx.store.parts("extract", "docs")) == 5
    assert list(reject_reasons(ctx.store.rejects("extract", "docs")).values()) == [1]
    # Beam's sinks left nothing behind but the outputs; a second build finds the stage current.
    left = [p.removeprefix(f"{recipe.workdir}/") for p in match_files(f"{recipe.workdir}/**")]
    assert all(
        re.fullmatch(r"extract/docs/(rejects/)?part-[^/]+\.parquet|extract/docs/_MANIFEST\.json", p)
        for p in left
    ), left
    (again,) = run_stage(STAGE_CLASSES["extract"](), ctx, ["docs"])
    assert again.status == "skipped"
