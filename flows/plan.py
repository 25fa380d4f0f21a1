"""`llama-recipe plan`: what a build will give and cost, before anything is built.

The epochs table: tokens available per source come from the build (the tokenize stage's
counts) or from the command line (`--tokens commoncrawl=852.7B`), so the table can be read for
data one does not have yet; fed with the paper's per-source sizes it gives the paper's epochs
column.

The core-hours table: bytes of document text per source (`--text commoncrawl=3.3T`, or
`--paper` for the paper's Table 1 sizes) times the one-core rates of pipelines/rates.py. Each
stage is assumed to read all of its source's text, unless the recipe's workdir holds a build:
then its manifests give the fraction of the text the earlier stages kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from pipelines import rates
from pipelines.errors import UserError
from pipelines.mixture import (
    SourcePlan,
    available_tokens,
    expected_training_tokens,
    plan_mixture,
)
from pipelines.recipe import Recipe
from pipelines.registry import PER_SOURCE_STAGES, STAGES, spec
from pipelines.store import StageStore

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
_AMOUNT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([KMBGT]?)\s*$", re.IGNORECASE)


def parse_amount(text: str) -> int:
    """'852.7B' -> 852700000000; plain integers and 1.4e12 work too."""
    match = _AMOUNT_RE.match(text)
    if not match:
        raise UserError(f"{text!r}: not a token count (e.g. 1400000000000, 1.4T, 852.7B, 300M)")
    return round(float(match.group(1)) * _SUFFIX[match.group(2).upper()])


def per_source(
    recipe: Recipe, items: list[str], option: str, parse: Callable[[str], int]
) -> dict[str, int]:
    """SOURCE=VALUE items given to `option` (--tokens, --text), each value read by `parse`."""
    values: dict[str, int] = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in recipe.sources or not value:
            raise UserError(
                f"{option} {item!r}: use SOURCE=VALUE with one of {', '.join(recipe.sources)}"
            )
        try:
            values[name] = parse(value)
        except UserError as exc:
            raise UserError(f"{option} {item!r}: {exc}") from None
    return values


def token_counts(recipe: Recipe, given: list[str]) -> dict[str, int]:
    """SOURCE=N arguments, and the build's counts for the sources not given."""
    counts = per_source(recipe, given, "--tokens", parse_amount)
    store = StageStore(recipe.workdir)
    missing = []
    for name in recipe.sources:
        if name in counts:
            continue
        try:
            manifest = store.read_manifest("tokenize", name)
        except ValueError as exc:  # e.g. gs:// without apache-beam[gcp]
            raise UserError(
                f"{recipe.workdir}: cannot read the build ({exc}); give --tokens for every source"
            ) from None
        if manifest is None:
            missing.append(name)
            continue
        counts[name] = available_tokens(manifest)  # as the mix counts them
    if missing:
        raise UserError(
            f"no token counts for {', '.join(missing)}: build through `tokenize` or give "
            f"--tokens {missing[0]}=N"
        )
    return counts


def plan_table(recipe: Recipe, total_tokens: int, counts: dict[str, int]) -> Table:
    """Epochs per source from the tokens each offers (`counts`), less the part that
    `mixture.validation` is expected to hold out."""
    training = {
        name: expected_training_tokens(tokens, recipe.mixture.validation_amount(name))
        for name, tokens in counts.items()
    }
    plans: dict[str, SourcePlan] = plan_mixture(total_tokens, recipe.weights(), training)
    table = Table(title=f"{recipe.name}: {total_tokens:,} tokens")
    for column in ("source", "available tokens", "sampling proportion", "target tokens", "epochs"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for name, plan in plans.items():
        table.add_row(
            name,
            f"{plan.available_tokens:,}",
            f"{recipe.weights()[name]:.2%}",
            f"{plan.target_tokens:,}",
            f"{plan.epochs:.2f}",
        )
    return table


GB = 10**9

# Table 1 of the paper: the disk size of each corpus, decimal units. These are the sizes of
# what the paper kept, so the text its stages read before filtering was larger.
PAPER_DISK_BYTES = {
    "CommonCrawl": 3_300 * GB,
    "C4": 783 * GB,
    "GitHub": 328 * GB,
    "Wikipedia": 83 * GB,
    "Books": 85 * GB,
    "ArXiv": 92 * GB,
    "StackExchange": 78 * GB,
}
# The paper's corpus a source of each format is; a `jsonl` source matches by its name.
PAPER_CORPUS_OF_FORMAT = {
    "wet": "CommonCrawl",
    "warc": "CommonCrawl",
    "c4": "C4",
    "github": "GitHub",
    "mediawiki": "Wikipedia",
    "gutenberg": "Books",
    "books-text": "Books",
    "arxiv": "ArXiv",
    "stackexchange": "StackExchange",
}

_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([KMGT]?)B?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'3.3T' -> 3300000000000 bytes (decimal units, as Table 1); 783G, 83GB, 500M, 1e9 and
    plain byte counts work too."""
    match = _SIZE_RE.match(text)
    if not match:
        raise UserError(f"{text!r}: not a size in bytes (e.g. 3.3T, 783G, 83GB, 500M)")
    return round(float(match.group(1)) * _SUFFIX[match.group(2).upper()])


def paper_sizes(recipe: Recipe) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The paper's Table 1 size for each source of the recipe that is one of its corpora (by
    format, or by name for `jsonl`), and (source, line) pairs saying which corpus each source
    took; the last pair, source "", names the corpora no source took."""
    sizes: dict[str, int] = {}
    taken: dict[str, str] = {}  # paper corpus -> the source that took it
    lines: list[tuple[str, str]] = []
    by_name = {corpus.lower(): corpus for corpus in PAPER_DISK_BYTES}
    for name, source in recipe.sources.items():
        corpus = PAPER_CORPUS_OF_FORMAT.get(source.format) or by_name.get(name.lower())
        how = f"format {source.format}" if source.format in PAPER_CORPUS_OF_FORMAT else "name"
        if corpus is None:
            lines.append((name, f"{name}: no corpus of the paper (give --text {name}=SIZE)"))
        elif corpus in taken:
            # Two sources of one corpus would count its size twice.
            lines.append((name, f"{name}: {corpus} went to {taken[corpus]}, give --text"))
        else:
            taken[corpus] = name
            sizes[name] = PAPER_DISK_BYTES[corpus]
            lines.append((name, f"{name} = {corpus}, {_bytes(sizes[name])} ({how})"))
    missing = [corpus for corpus in PAPER_DISK_BYTES if corpus not in taken]
    if missing:
        lines.append(("", f"not in this recipe: {', '.join(missing)}"))
    return sizes, lines


def text_sizes(recipe: Recipe, given: list[str]) -> dict[str, int]:
    """Bytes of text per source from SOURCE=SIZE items."""
    return per_source(recipe, given, "--text", parse_size)


def kept_fractions(recipe: Recipe) -> dict[str, dict[str, float]]:
    """For each source the build has extracted: the fraction of the extracted text that each
    per-source stage kept (its manifest's kept_text_chars over extract's). A stage not built
    yet, or one that does not count text (tokenize), keeps what its upstream kept."""
    store = StageStore(recipe.workdir)
    fractions: dict[str, dict[str, float]] = {}
    for source in recipe.sources:
        try:
            extract = store.read_manifest("extract", source)
        except ValueError:  # e.g. gs:// without apache-beam[gcp]: no build to read
            return {}
        base = (extract or {}).get("kept_text_chars")
        if not base:
            continue
        kept: dict[str, float] = {}
        for stage in PER_SOURCE_STAGES:
            chars = (store.read_manifest(stage, source) or {}).get("kept_text_chars")
            if chars is not None:
                kept[stage] = chars / base
            else:
                upstream = spec(stage).upstream
                kept[stage] = kept[upstream] if upstream else 1.0
        fractions[source] = kept
    return fractions


@dataclass(frozen=True)
class StageCost:
    stage: str
    source: str
    text_bytes: float  # the text this stage reads of this source
    rate: rates.Rate

    @property
    def core_hours(self) -> float:
        return self.text_bytes / GB * self.rate.seconds_per_gb / 3600


def _read_fraction(stage: str, kept: dict[str, float]) -> float:
    """The fraction of a source's extracted text that `stage` reads: what the first
    per-source stage it reads kept (extract reads the input the size was given for)."""
    reads = [name for name in spec(stage).reads if spec(name).per_source]
    return kept.get(reads[0], 1.0) if reads else 1.0


def estimate(
    recipe: Recipe, sizes: dict[str, int], kept: dict[str, dict[str, float]]
) -> list[StageCost]:
    """One cost per stage and sized source, in stage order; train-classifier only over the
    sources the classifier learns from, and only when a filter uses it; decontaminate only
    when the recipe has evaluation sets."""
    costs = []
    for stage in STAGES:
        if stage == "decontaminate" and recipe.decontamination is None:
            continue  # it passes dedup's documents through: no work
        names = list(sizes)
        if stage == "train-classifier":
            learns_from = recipe.classifier_sources() if recipe.classifier_needed() else []
            names = [name for name in names if name in learns_from]
        for name in names:
            text = sizes[name] * _read_fraction(stage, kept.get(name, {}))
            rate = rates.rate_for(stage, recipe.sources[name].format)
            costs.append(StageCost(stage, name, text, rate))
    return costs


def _bytes(size: float) -> str:
    return f"{size / 10**12:g} TB" if size >= 10**12 else f"{size / GB:g} GB"


def cost_table(recipe: Recipe, costs: list[StageCost]) -> Table:
    """Each stage's total, then (for a per-source stage) its sources; the sum at the end."""
    table = Table(title=f"{recipe.name}: core-hours by stage (an estimate)")
    for column in ("stage", "source", "text GB", "CPU s/GB", "core-hours"):
        table.add_column(column, justify="left" if column in ("stage", "source") else "right")
    every = len({cost.source for cost in costs})
    for stage in STAGES:
        rows = [cost for cost in costs if cost.stage == stage]
        if not rows:
            continue
        text = sum(cost.text_bytes for cost in rows)
        hours = sum(cost.core_hours for cost in rows)
        names = "all" if len(rows) == every else ", ".join(cost.source for cost in rows)
        table.add_row(stage, names, f"{text / GB:,.1f}", "", f"{hours:,.2f}", style="bold")
        for cost in rows if spec(stage).per_source else []:
            rate = f"{cost.rate.seconds_per_gb:g}" + ("" if cost.rate.measured else "*")
            table.add_row(
                "", cost.source, f"{cost.text_bytes / GB:,.1f}", rate, f"{cost.core_hours:,.2f}"
            )
        table.add_section()
    total = sum(cost.core_hours for cost in costs)
    table.add_row("total", "", "", "", f"{total:,.2f}", style="bold")
    return table


def _caption(
    recipe: Recipe, sizes: dict[str, int], paper: list[str], kept: dict[str, dict[str, float]]
) -> str:
    """What the estimate rests on: where the rates come from, and what each stage reads."""
    lines = [
        f"An estimate from the rates measured on {rates.MEASURED_ON.describe()}, in "
        "pipelines/rates.py; not a promise: other machines, runners and data differ. "
        "* a placeholder rate, not measured yet."
    ]
    if kept:
        lines.append(
            f"{', '.join(kept)}: each stage reads what the stages before it kept in the build "
            f"({recipe.workdir})."
        )
    if paper:
        lines.append(
            f"{', '.join(paper)}: every stage reads all of the Table 1 size, which is what the "
            "paper kept; the text before its filters was larger, so take these as a lower bound."
        )
    rest = [name for name in sizes if name not in kept and name not in paper]
    if rest:
        lines.append(
            f"{', '.join(rest)}: every stage reads all of the text (no build says what the "
            "earlier stages keep)."
        )
    unsized = [name for name in recipe.sources if name not in sizes]
    if unsized:
        lines.append(f"Not counted (no size): {', '.join(unsized)}.")
    return "\n".join(lines)


def print_plan(
    recipe: Recipe,
    total_tokens: int | None,
    given: list[str],
    text: list[str] | None = None,
    paper: bool = False,
) -> None:
    """The epochs table; with `text` (SOURCE=SIZE items) or `paper`, the core-hours table."""
    console = Console(width=120)
    paper_bytes, mapping = paper_sizes(recipe) if paper else ({}, [])
    given_bytes = text_sizes(recipe, text or [])
    sizes = {**paper_bytes, **given_bytes}
    try:
        counts = token_counts(recipe, given)
    except UserError as exc:
        if given:
            raise
        if not sizes:
            raise UserError(
                f"{exc} (--paper or --text SOURCE=SIZE give core-hours by stage without a build)"
            ) from None
        console.print(f"No epochs table: {exc}", highlight=False)
    else:
        console.print(plan_table(recipe, total_tokens or recipe.mixture.total_tokens, counts))
    if not sizes:
        console.print(
            "Core-hours by stage: add --paper (the paper's corpus sizes) or --text SOURCE=SIZE "
            "(bytes of text, e.g. commoncrawl=3.3T).",
            highlight=False,
        )
        return
    if mapping:
        console.print("The paper's Table 1 sizes (of the data it kept):", highlight=False)
        for name, line in mapping:
            overridden = ", overridden by --text" if name in given_bytes else ""
            console.print(f"  {line}{overridden}", highlight=False)
    # Table 1's sizes are of what the paper kept: no stage of ours shrinks them further.
    kept = kept_fractions(recipe) if given_bytes else {}
    kept = {name: fractions for name, fractions in kept.items() if name in given_bytes}
    console.print(cost_table(recipe, estimate(recipe, sizes, kept)))
    paper_only = [name for name in paper_bytes if name not in given_bytes]
    console.print(_caption(recipe, sizes, paper_only, kept), highlight=False)
