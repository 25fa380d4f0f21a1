"""The trained tokenizer as Hugging Face loads it, and as a lossless codec."""

import gzip
import json

import pytest
import sentencepiece as spm
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.recipe import load_recipe
from pipelines.store import StageStore
from samples import texts
from tests.conftest import SHARED_FIXTURES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tokenizer_dir(built_sample):
    store = StageStore(load_recipe(built_sample).workdir)
    return store.dir("train-tokenizer", "_all")


@pytest.fixture(scope="module")
def sp(tokenizer_dir):
    return spm.SentencePieceProcessor(model_file=f"{tokenizer_dir}/tokenizer.model")


def real_lines() -> list[str]:
    lines = [p for ps in texts.ENGLISH.values() for p in ps]
    c4 = SHARED_FIXTURES / "c4" / "olmo-c4-sample.00000-of-00001.json.gz"
    if c4.exists():
        with gzip.open(c4, "rt") as fh:
            for line in fh:
                lines += [x for x in json.loads(line)["text"].split("\n") if x.strip()]
    return lines[:4000]


def test_transformers_gives_our_ids(tokenizer_dir, sp):
    from transformers import AutoTokenizer, LlamaTokenizer

    lines = real_lines()
    assert len(lines) >= (3000 if SHARED_FIXTURES.exists() else 30)
    auto = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert auto("Hello world")["input_ids"][0] == 1  # BOS in front, as in LLaMA
    assert auto.eos_token_id == 2 and auto.unk_token_id == 0
    different = [x for x in lines if auto(x, add_special_tokens=False)["input_ids"] != sp.encode(x)]
    assert different == []
    assert all(auto.decode(sp.encode(x)) == x for x in lines[:500])
    # transformers' Llama class differs only where a line starts with whitespace (see
    # pipelines/hf_tokenizer.py).
    llama = LlamaTokenizer.from_pretrained(tokenizer_dir)
    different = [
        x for x in lines if llama(x, add_special_tokens=False)["input_ids"] != sp.encode(x)
    ]
    assert all(x[:1].isspace() for x in different)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_any_unicode_string_round_trips_without_unk(sp, text):
    ids = sp.encode(text)
    assert sp.decode(ids) == text
    assert sp.unk_id() not in ids
