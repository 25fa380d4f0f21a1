"""The trainer checks every shard it reads against mixture.json: a flipped bit, a token id
past the vocabulary, a damaged footer or a cut-short file is one line naming the shard."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from flows.cli import main
from flows.recipe import load_recipe
from pipelines.shards import ShardError, ShardReader
from tests.conftest import mix_shards, write_recipe

pytestmark = pytest.mark.integration


@pytest.fixture
def copy(built_sample, tmp_path):
    """A copy of the built sample's workdir and a recipe that points at it; (recipe, shards)."""
    shutil.copytree(load_recipe(built_sample).workdir, tmp_path / "work")
    recipe = write_recipe(tmp_path, train={"max_steps": 2, "batch_size": 2, "warmup_steps": 1})
    return recipe, mix_shards(str(tmp_path / "work"))


def _flip(path: str, offset_from_end: int) -> None:
    """Flip one bit of a token inside the data (the footer is the last bytes of the file)."""
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2 - offset_from_end] ^= 0x04
    open(path, "wb").write(bytes(data))


def _train(recipe, capsys, *flags) -> tuple[int, str]:
    code = main(["train", str(recipe), *flags])
    return code, capsys.readouterr().err.strip()


def test_a_flipped_bit_is_found_before_the_shard_is_read(copy, capsys):
    recipe, shards = copy
    first = sorted(n for n in os.listdir(shards) if n.endswith(".arrow"))[0]
    _flip(os.path.join(shards, first), 0)
    with pytest.raises(ShardError, match=f"{first}: sha256 .* mixture.json records"):
        ShardReader(shards, vocab_size=1024)[0]
    code, err = _train(recipe, capsys)
    assert code == 2 and err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith(f"llama-recipe: error: {first}: sha256")


def test_a_token_past_the_vocabulary_names_its_row(copy):
    recipe, shards = copy
    mixture = json.load(open(os.path.join(shards, "mixture.json")))
    # Rewrite the first shard with one token too large, and record its new digest: only the
    # vocabulary check can find it.
    import hashlib

    import pyarrow as pa

    name = mixture["shards"][0]["file"]
    path = os.path.join(shards, name)
    table = pa.ipc.open_file(path).read_all()
    width = table.column(0).type.list_size
    values = np.array(table.column(0).combine_chunks().values, dtype=np.uint16)
    values[width * 3 + 5] = 60000  # row 3
    column = pa.FixedSizeListArray.from_arrays(pa.array(values), width)
    with pa.ipc.new_file(path, table.schema) as writer:
        writer.write_table(pa.table({"tokens": column}, schema=table.schema))
    mixture["shards"][0]["sha256"] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    mixture["shards"][0]["bytes"] = os.path.getsize(path)
    json.dump(mixture, open(os.path.join(shards, "mixture.json"), "w"))
    reader = ShardReader(shards, vocab_size=load_recipe(recipe).tokenizer.vocab_size)
    with pytest.raises(ShardError, match=f"{name}: token id 60000 in row 3 is past the vocab"):
        reader[0]


def test_a_damaged_footer_or_a_short_file_is_one_line(copy, capsys):
    recipe, shards = copy
    names = sorted(n for n in os.listdir(shards) if n.endswith(".arrow"))
    path = os.path.join(shards, names[1])
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-20] + b"\0" * 20)  # the footer's end overwritten
    code, err = _train(recipe, capsys)
    assert code == 2 and f"{names[1]}: not a readable Arrow IPC file" in err
    assert err.count("\n") == 0
    open(path, "wb").write(data[: len(data) // 2])  # cut short
    code, err = _train(recipe, capsys)
    assert code == 2 and f"{names[1]}: {len(data) // 2} bytes, mixture.json records" in err


def test_the_hash_check_can_be_skipped_the_footer_check_cannot(copy, capsys):
    recipe, shards = copy
    first = sorted(n for n in os.listdir(shards) if n.endswith(".arrow"))[0]
    _flip(os.path.join(shards, first), 0)
    code, _ = _train(recipe, capsys, "--no-verify-shards")
    assert code == 0  # trains on the damaged data, as asked
    path = os.path.join(shards, first)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-20] + b"\0" * 20)
    code, err = _train(recipe, capsys, "--no-verify-shards")
    assert code == 2 and "not a readable Arrow IPC file" in err
