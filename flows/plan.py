"""`llama-recipe plan`: the epochs table a token budget gives, before anything is built.

Tokens available per source come from the build (the tokenize stage's counts) or from the
command line (`--tokens commoncrawl=852.7B`), so the table can be read for data one does not
have yet; fed with the paper's per-source sizes it gives the paper's epochs column.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table

from pipelines.errors import UserError
from pipelines.mixture import SourcePlan, available_tokens, plan_mixture
from pipelines.recipe import Recipe
from pipelines.store import StageStore

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
_AMOUNT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([KMBGT]?)\s*$", re.IGNORECASE)


def parse_amount(text: str) -> int:
    """'852.7B' -> 852700000000; plain integers and 1.4e12 work too."""
    match = _AMOUNT_RE.match(text)
    if not match:
        raise UserError(f"{text!r}: not a token count (e.g. 1400000000000, 1.4T, 852.7B, 300M)")
    return round(float(match.group(1)) * _SUFFIX[match.group(2).upper()])


def token_counts(recipe: Recipe, given: list[str]) -> dict[str, int]:
    """SOURCE=N arguments, and the build's counts for the sources not given."""
    counts: dict[str, int] = {}
    for item in given:
        name, _, amount = item.partition("=")
        if name not in recipe.sources or not amount:
            raise UserError(
                f"--tokens {item!r}: use SOURCE=N with one of {', '.join(recipe.sources)}"
            )
        counts[name] = parse_amount(amount)
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
    plans: dict[str, SourcePlan] = plan_mixture(total_tokens, recipe.weights(), counts)
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


def print_plan(recipe: Recipe, total_tokens: int | None, given: list[str]) -> None:
    counts = token_counts(recipe, given)
    Console(width=120).print(
        plan_table(recipe, total_tokens or recipe.mixture.total_tokens, counts)
    )
