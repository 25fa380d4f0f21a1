"""The recipe: one YAML file that says what to build, validated with pydantic.

Every section mirrors a stage. Defaults are the paper's or the reference implementation's
published values where one exists; relative paths resolve against the recipe file's folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from filters.base import registered
from filters.quality_classifier import ClassifierTrainingConfig, ReferenceClassifierConfig
from pipelines.errors import RecipeError
from pipelines.registry import StageName

SourceFormat = Literal[
    "wet",
    "warc",
    "c4",
    "mediawiki",
    "gutenberg",
    "books-text",
    "arxiv",
    "stackexchange",
    "github",
    "jsonl",
]

_URI_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_uri(path: str) -> bool:
    """True for `scheme://...` locations (gs://, s3://, http://, file://)."""
    return bool(_URI_RE.match(path))


class _Strict(BaseModel):
    # A typo'd key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid")


class RunnerConfig(_Strict):
    name: str = "FnApiRunner"  # in-process; DirectRunner first tries to download Prism
    options: dict[str, Any] = Field(default_factory=dict)  # any Beam PipelineOptions flag


class ExtractConfig(_Strict):
    """Limits that keep damaged or hostile input from exhausting a worker."""

    max_document_bytes: int = Field(20_000_000, gt=0)  # larger documents are rejected
    max_member_bytes: int = Field(4_000_000_000, gt=0)  # one file inside a tar or 7z
    # Decompressed bytes per compressed byte before a file counts as a decompression bomb
    # (text and XML compress 3-15x; a bomb of zeros ~1000x), checked past the first 64 MB.
    max_compression_ratio: float = Field(100.0, gt=1)
    compression_check_after_bytes: int = Field(64_000_000, ge=0)
    # Documents where more than this fraction of characters were undecodable bytes.
    max_invalid_char_fraction: float = Field(0.01, ge=0, le=1)
    # Per-document budgets of the format's cleaning (HTML, wikitext, LaTeX...): a document
    # that takes longer, or whose text grows past this many times its source (LaTeX macros
    # can), is rejected with the measured value. Real documents take milliseconds.
    max_document_seconds: float | None = Field(20.0, gt=0)
    max_growth: float = Field(3.0, ge=1)


class QualityConfig(_Strict):
    """Budgets of the quality stage: a document that takes longer in a source's filters is
    rejected as quality:too_slow with the seconds it took."""

    max_document_seconds: float | None = Field(20.0, gt=0)


class FetchConfig(_Strict):
    """How http(s) inputs are downloaded into `<workdir>/fetch/`."""

    retries: int = Field(6, ge=0)  # on 5xx, 429, resets and short bodies
    backoff_s: float = Field(1.0, ge=0)  # doubled after every failed attempt...
    max_backoff_s: float = Field(60.0, ge=0)  # ...up to this
    timeout_s: float = Field(60.0, gt=0)  # per connection attempt and read


class CrawlConfig(_Strict):
    """A CommonCrawl crawl: its file list (`<kind>.paths.gz`) picks the inputs."""

    id: str = Field(pattern=r"^CC-MAIN-\d{4}-\d{2}$")  # e.g. CC-MAIN-2020-05
    base_url: str = "https://data.commoncrawl.org/"
    kind: Literal["wet", "warc"] = "wet"
    max_files: int | None = Field(None, gt=0)  # the first N files of the list
    fraction: float | None = Field(None, gt=0, le=1)  # or a deterministic sample
    seed: int = 0


# The named quality filters a source can list under `filters`, each with its published
# defaults: every filter registered in filters/.
FILTERS = registered()
FILTER_NAMES = tuple(FILTERS)
FilterConfig = Annotated[
    Union[tuple(FILTERS.values())],  # noqa: UP007 (a union of the registered classes)
    Field(discriminator="name"),
]


KeepRule = Literal["source_priority", "quality_score", "length"]


class DedupConfig(_Strict):
    """Exact, line-level (CCNet) and MinHash-LSH near deduplication."""

    exact: bool = True  # identical text after NFC, lower case, collapsed spaces
    near: bool = True  # MinHash-LSH
    threshold: float = Field(0.8, gt=0, le=1)  # Jaccard similarity of word n-gram shingles
    ngram: int = Field(5, ge=1)  # word 5-grams, as in the Gopher/RefinedWeb dedup
    num_perm: int = Field(128, ge=8)  # MinHash permutations (datasketch's default)
    seed: int = 1
    # Candidates are confirmed before they count: "exact" Jaccard on the shingles, or the
    # MinHash "estimated" one (cheaper, +-0.035 at 0.8 with 128 permutations).
    verify: Literal["exact", "estimated"] = "exact"
    # LSH bands x rows: the banding that misses a pair at the threshold with at most this
    # probability (and proposes the fewest dissimilar pairs).
    max_miss: float = Field(0.001, gt=0, lt=1)
    # A bucket with more members pairs each of them with its top members only.
    bucket_all_pairs: int = Field(64, ge=2)
    rounds: int = Field(16, ge=1)  # distributed keep/remove rounds before finishing locally
    keep: list[KeepRule] = Field(
        default_factory=lambda: ["source_priority", "quality_score", "length"]
    )  # which copy survives, in this order; the id breaks any tie
    source_priority: list[str] = Field(default_factory=list)  # earlier wins; others after
    # Sources deduplicated against each other, e.g. [[wikipedia, c4, commoncrawl]].
    cross_source: list[list[str]] = Field(default_factory=list)
    # CCNet line dedup: lines repeated across documents of a group are removed; the source's
    # documents fall into this many groups by id (1: the whole source is one group).
    line_groups: int = Field(1, ge=1)
    min_words_after_lines: int = Field(50, ge=0)  # shorter documents are then dropped


class SourceDedupConfig(_Strict):
    lines: bool | None = None  # CCNet line dedup; None: on for wet/warc (CommonCrawl)
    threshold: float | None = Field(None, gt=0, le=1)  # None: books 0.9, else dedup.threshold


class SourceConfig(_Strict):
    format: SourceFormat
    inputs: list[str] = Field(default_factory=list)  # paths, globs, URIs, http(s) URLs
    crawl: CrawlConfig | None = None  # CommonCrawl: inputs from a crawl's file list
    # StackExchange: only these sites, or the largest `max_sites` among the inputs by size
    # (the paper kept the 28 largest).
    sites: list[str] | None = None
    max_sites: int | None = Field(28, gt=0)
    # GitHub: the licences a repository may carry (the paper: Apache, BSD, MIT).
    licenses: list[str] = Field(default_factory=lambda: ["apache", "bsd", "mit"])
    # Published md5/sha1/sha256 lists ("HEX  NAME" lines) that downloads are verified against.
    checksums: list[str] = Field(default_factory=list)
    weight: float = Field(gt=0)
    # None: record the language but keep every document (ArXiv, StackExchange, GitHub).
    languages: list[str] | None = None
    min_language_score: float = Field(0.5, ge=0, le=1)  # CCNet's default threshold
    # The quality filters, applied in order; the first that fails drops the document.
    # Each item: a filter name, or a mapping with `name:` and the thresholds to change.
    filters: list[FilterConfig] = Field(default_factory=list)
    dedup: SourceDedupConfig = Field(default_factory=SourceDedupConfig)

    @field_validator("filters", mode="before")
    @classmethod
    def _filter_names(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        items = []
        for item in value:
            if isinstance(item, str):
                if item not in FILTER_NAMES:
                    raise ValueError(f"unknown filter {item!r} (one of {', '.join(FILTER_NAMES)})")
                item = {"name": item}
            elif isinstance(item, dict) and item.get("name") not in FILTER_NAMES:
                raise ValueError(
                    f"unknown filter {item.get('name')!r} (one of {', '.join(FILTER_NAMES)})"
                )
            items.append(item)
        return items

    @model_validator(mode="after")
    def _has_inputs(self) -> SourceConfig:
        if not self.inputs and self.crawl is None:
            raise ValueError("needs `inputs` (paths, globs, URIs or URLs) or a `crawl`")
        return self


class LangIdConfig(_Strict):
    # None: the cached lid.176.ftz fetched by `llama-recipe fetch-lid-model`; or the path,
    # URI or URL of another fastText language-ID model (e.g. the full lid.176.bin).
    model: str | None = None
    batch_size: int = 512


class TokenizerConfig(_Strict):
    vocab_size: int = Field(32000, ge=300)  # LLaMA: 32k BPE vocabulary
    sample_chars: int = Field(100_000_000, gt=0)  # text drawn across sources for training
    character_coverage: float = 0.99995
    max_sentence_length: int = 16384
    num_threads: int = 2


class MixtureConfig(_Strict):
    total_tokens: int = Field(gt=0)
    seq_len: int = Field(2048, gt=0)  # LLaMA context length
    seed: int = 0
    rows_per_shard: int = Field(8192, gt=0)
    # Committed mix versions kept (the newest): training runs keep reading, and resume on,
    # the version they started on while a rebuild commits a new one.
    keep_versions: int = Field(3, ge=1)
    # Documents held out of training, chosen by a hash of their id, and written as validation
    # shards: per source, a fraction of its documents (a number below 1) or about that many
    # tokens (1 or more). One number applies to every source; a mapping names the sources
    # that hold some out.
    validation: float | dict[str, float] | None = None

    @field_validator("validation")
    @classmethod
    def _positive(cls, value: float | dict[str, float] | None) -> float | dict[str, float] | None:
        amounts = value.values() if isinstance(value, dict) else [] if value is None else [value]
        if any(amount <= 0 for amount in amounts):
            raise ValueError("a fraction (0 < x < 1) or a number of tokens (>= 1) per source")
        return value

    def validation_amount(self, source: str) -> float:
        """The source's held-out fraction (< 1) or tokens (>= 1); 0 when it holds none out."""
        if isinstance(self.validation, dict):
            return self.validation.get(source, 0.0)
        return self.validation or 0.0


class DecontaminationConfig(_Strict):
    """Training documents that share a word n-gram (after normalization) with an evaluation
    example are removed, with the reason `decontaminate:<task>`."""

    # Task files (JSONL in the format of docs/eval.md), as NAME=PATH or PATH (named by the
    # file's stem); paths or URIs.
    eval_sets: list[str] = Field(min_length=1)
    ngram: int = Field(13, ge=1)  # GPT-3 and the LLaMA-era reports: 13-grams of words
    # An example with fewer than `ngram` words matches as a whole when it has at least this
    # many; shorter ones are too short to tell from ordinary text and are not checked.
    min_words: int = Field(8, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> DecontaminationConfig:
        if self.min_words > self.ngram:
            raise ValueError(f"min_words ({self.min_words}) must be at most ngram ({self.ngram})")
        names = [name for name, _ in map(task_file, self.eval_sets)]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"eval_sets: two task files named {twice[0]!r} (use NAME=PATH)")
        return self

    def tasks(self) -> dict[str, str]:
        """Each task's name and file (path or URI), in the recipe's order."""
        return dict(map(task_file, self.eval_sets))


def task_file(item: str) -> tuple[str, str]:
    """(name, path) of an `eval_sets` item: NAME=PATH, or PATH named by its file's stem
    (`mmlu.jsonl.gz` is `mmlu`); a URI's `=` is not taken for a name's."""
    name, sep, path = item.partition("=")
    if sep and re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        return name, path
    base = item.rstrip("/").rsplit("/", 1)[-1]
    for compression in (".gz", ".bz2", ".xz"):
        base = base.removesuffix(compression)
    return Path(base).stem, item


class OrchestrationConfig(_Strict):
    """How Prefect runs the stages: retries, time limits and concurrency limits."""

    # A stage attempt that fails for a reason other than the recipe or the input (a network
    # outage, a preempted worker) runs again after a backoff: `retry_delay_s`, doubled each time.
    retries: dict[StageName, int] = Field(default_factory=lambda: {"extract": 2})
    retry_delay_s: float = Field(10.0, ge=0)
    # Seconds one attempt of a stage may take before it fails as TimedOut.
    timeout_s: dict[StageName, float] = Field(default_factory=dict)
    # How many runs of a stage may run at once across every build that shares the Prefect
    # server (global concurrency limits named `llama-recipe-<stage>`).
    concurrency: dict[StageName, int] = Field(
        default_factory=lambda: {"dedup": 1, "train-tokenizer": 1}
    )
    # How many `train` runs at once (the rest wait in the queue).
    train_concurrency: int = Field(1, ge=1)

    @field_validator("retries", "concurrency", "timeout_s")
    @classmethod
    def _in_range(cls, values: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        least, strict, problem = _PER_STAGE_RANGES[info.field_name]
        for stage, value in values.items():
            if value < least or (strict and value == least):
                raise ValueError(f"{stage}: {problem}")
        return values


# The lowest value of each per-stage setting, whether that value itself is out, and the message.
_PER_STAGE_RANGES = {
    "retries": (0, False, "must be 0 or more"),
    "concurrency": (1, False, "must be 1 or more (leave the stage out for no limit)"),
    "timeout_s": (0, True, "must be a positive number of seconds"),
}


class Recipe(_Strict):
    """What to build: the data side of a recipe (flows.recipe.Recipe adds `train`)."""

    name: str
    workdir: str
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    sources: dict[str, SourceConfig]
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    langid: LangIdConfig = Field(default_factory=LangIdConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    # The reference classifier's training data; needed when a source lists a
    # `reference_classifier` filter without a `model` of its own.
    quality_classifier: ClassifierTrainingConfig | None = None
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    mixture: MixtureConfig
    decontamination: DecontaminationConfig | None = None
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)

    @field_validator("name")
    @classmethod
    def _recipe_name(cls, name: str) -> str:
        # It names the Prefect deployments, artifacts, events and concurrency limits.
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            raise ValueError(f"{name!r}: use lowercase letters, digits, - and _")
        return name

    @field_validator("sources")
    @classmethod
    def _names(cls, sources: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        if not sources:
            raise ValueError("needs at least one source")
        for name in sources:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                raise ValueError(f"source name {name!r}: use lowercase letters, digits, - and _")
        return sources

    def weights(self) -> dict[str, float]:
        """Per-source sampling proportions, renormalized to sum to 1."""
        total = sum(s.weight for s in self.sources.values())
        return {name: s.weight / total for name, s in self.sources.items()}

    @model_validator(mode="after")
    def _classifier_has_data(self) -> Recipe:
        for name, source in self.sources.items():
            for f in source.filters:
                if isinstance(f, ReferenceClassifierConfig) and f.model is None:
                    if self.quality_classifier is None:
                        raise ValueError(
                            f"sources.{name}.filters: reference_classifier has no `model`; "
                            "give one or add a `quality_classifier` section to train it"
                        )
        if self.quality_classifier is not None:
            for item in self.quality_classifier.positives + self.quality_classifier.negatives:
                if "." not in item and "/" not in item and item not in self.sources:
                    raise ValueError(
                        f"quality_classifier: {item!r} is neither a source of this recipe "
                        "nor a JSONL file"
                    )
        return self

    @model_validator(mode="after")
    def _dedup_sources(self) -> Recipe:
        seen: set[str] = set()
        for group in self.dedup.cross_source:
            for name in group:
                if name not in self.sources:
                    raise ValueError(f"dedup.cross_source: no source {name!r}")
                if name in seen:
                    raise ValueError(f"dedup.cross_source: {name!r} is in two groups")
                seen.add(name)
        for name in self.dedup.source_priority:
            if name not in self.sources:
                raise ValueError(f"dedup.source_priority: no source {name!r}")
        return self

    @model_validator(mode="after")
    def _validation_sources(self) -> Recipe:
        if isinstance(self.mixture.validation, dict):
            for name in self.mixture.validation:
                if name not in self.sources:
                    raise ValueError(f"mixture.validation: no source {name!r}")
        return self

    def dedup_group(self, source: str) -> list[str]:
        """The sources deduplicated together with this one (itself alone by default)."""
        for group in self.dedup.cross_source:
            if source in group:
                return [s for s in self.sources if s in group]
        return [source]

    def dedup_threshold(self, sources: list[str]) -> float:
        """A source's own threshold (books: 0.9, "more than 90% content overlap" in the
        paper); a cross-source group uses the recipe's."""
        if len(sources) == 1:
            spec = self.sources[sources[0]]
            if spec.dedup.threshold is not None:
                return spec.dedup.threshold
            if spec.format in ("gutenberg", "books-text"):
                return 0.9
        return self.dedup.threshold

    def line_dedup(self, source: str) -> bool:
        spec = self.sources[source]
        return spec.dedup.lines if spec.dedup.lines is not None else spec.format in ("wet", "warc")

    def uses_trained_classifier(self, source: str) -> bool:
        """Whether a source filters with the classifier this recipe trains."""
        return any(
            isinstance(f, ReferenceClassifierConfig) and f.model is None
            for f in self.sources[source].filters
        )

    def classifier_needed(self) -> bool:
        """Whether some source uses the classifier the recipe trains."""
        return any(self.uses_trained_classifier(name) for name in self.sources)

    def classifier_sources(self) -> list[str]:
        """The recipe's sources the classifier trains on (the others are JSONL files)."""
        if self.quality_classifier is None:
            return []
        items = self.quality_classifier.positives + self.quality_classifier.negatives
        return list(dict.fromkeys(s for s in items if s in self.sources))

    def section_hash(self, *parts: Any) -> str:
        """A stable hash of some configuration (pydantic models or plain JSON data)."""
        payload = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts]
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    def sha256(self) -> str:
        return self.section_hash(self)


def resolve_path(path: str, base: Path) -> str:
    """A recipe's path as written, against the recipe file's folder `base` if relative."""
    if is_uri(path) or os.path.isabs(path):
        return path
    return os.path.normpath(str(base / path))


def _resolve_named(item: str, base: Path) -> str:
    """An `eval_sets` item with its path resolved (NAME=PATH stays named)."""
    name, path = task_file(item)
    return resolve_path(item, base) if path == item else f"{name}={resolve_path(path, base)}"


def _format_error(err: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{where}: unknown key"
    if err["type"] == "missing":
        return f"{where}: required key is missing"
    return f"{where}: {err['msg']}"


def _non_finite(value: Any, where: str = "") -> str | None:
    """The key path of the first infinite or NaN number in loaded YAML, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "(top level)"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


RecipeT = TypeVar("RecipeT", bound=Recipe)


def load_recipe(path: str | os.PathLike[str], schema: type[RecipeT] = Recipe) -> RecipeT:
    """Read a recipe and validate it with `schema` (this data-side Recipe, or one that adds
    sections to it); raise RecipeError naming the file and the bad key. Relative paths are
    resolved against the recipe file's folder."""
    recipe_path = Path(path)
    if not recipe_path.is_file():
        raise RecipeError(f"{recipe_path}: recipe file not found")
    try:
        data = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise RecipeError(f"{recipe_path}:{where} not valid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{recipe_path}: a recipe is a YAML mapping of keys to values")
    # YAML reads `.inf` and `.nan` as numbers; no setting of a recipe means either.
    where = _non_finite(data)
    if where:
        raise RecipeError(f"{recipe_path}: {where}: must be a finite number")
    try:
        recipe = schema.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_format_error(e) for e in exc.errors())
        raise RecipeError(f"{recipe_path}: {problems}") from None
    base = recipe_path.resolve().parent
    recipe.workdir = resolve_path(recipe.workdir, base)
    for source in recipe.sources.values():
        source.inputs = [resolve_path(p, base) for p in source.inputs]
    if recipe.langid.model is not None:
        recipe.langid.model = resolve_path(recipe.langid.model, base)
    for source in recipe.sources.values():
        for f in source.filters:
            for key in f.files:
                if getattr(f, key) is not None:
                    setattr(f, key, resolve_path(getattr(f, key), base))
    if recipe.decontamination is not None:
        recipe.decontamination.eval_sets = [
            _resolve_named(item, base) for item in recipe.decontamination.eval_sets
        ]
    if recipe.quality_classifier is not None:
        qc = recipe.quality_classifier
        qc.positives = [p if p in recipe.sources else resolve_path(p, base) for p in qc.positives]
        qc.negatives = [p if p in recipe.sources else resolve_path(p, base) for p in qc.negatives]
    return recipe
