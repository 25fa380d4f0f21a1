import re

import pytest

from flows.cli import main
from flows.plan import parse_amount
from tests.conftest import RECIPES

# Table 1 of the paper: tokens per source as sampling proportion x 1.4T / epochs.
PAPER_TOKENS = [
    "commoncrawl=852.7B",
    "c4=198.1B",
    "github=98.4B",
    "wikipedia=25.7B",
    "books=28.3B",
    "arxiv=33.0B",
    "stackexchange=27.2B",
]
PAPER_EPOCHS = {
    "commoncrawl": "1.10",
    "c4": "1.06",
    "github": "0.64",
    "wikipedia": "2.45",
    "books": "2.23",
    "arxiv": "1.06",
    "stackexchange": "1.03",
}


def test_plan_reproduces_table_1(capsys):
    recipe = str(RECIPES / "llama-paper.yaml")
    assert main(["plan", recipe, "--total-tokens", "1.4T", "--tokens", *PAPER_TOKENS]) == 0
    out = capsys.readouterr().out
    for source, epochs in PAPER_EPOCHS.items():
        row = next(line for line in out.splitlines() if f" {source} " in line)
        assert re.search(rf"│\s+{re.escape(epochs)} │$", row), row


def test_plan_needs_counts_it_cannot_find(capsys):
    recipe = str(RECIPES / "llama.yaml")  # a gs:// workdir, nothing built
    assert main(["plan", recipe, "--tokens", "c4=1B"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llama-recipe: error:") and "--tokens" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "text, value",
    [("1.4T", 1_400_000_000_000), ("852.7B", 852_700_000_000), ("300M", 300_000_000), ("12", 12)],
)
def test_token_amounts(text, value):
    assert parse_amount(text) == value
