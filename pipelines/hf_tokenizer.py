"""The trained SentencePiece model as the files Hugging Face `transformers` loads:
`tokenizer.json` (the `tokenizers` BPE with byte fallback, the same vocabulary
and merges), `tokenizer_config.json` and `special_tokens_map.json`.

Written from SentencePiece's own API, without `transformers` or protobuf: the merges are
every split of a vocabulary piece into two vocabulary pieces, ranked by the merged piece's
id (SentencePiece's BPE merges the pair whose result scores highest, and scores fall with
the id), which is how Hugging Face converts LLaMA's tokenizer.model.
"""

from __future__ import annotations

import json
from typing import Any

import sentencepiece as spm

SPACE = "\u2581"  # SentencePiece's visible space


def tokenizer_json(sp: spm.SentencePieceProcessor) -> dict[str, Any]:
    vocab = {sp.id_to_piece(i): i for i in range(sp.vocab_size())}
    special = [i for i in range(sp.vocab_size()) if sp.is_control(i) or sp.is_unknown(i)]
    merges = []
    for piece, piece_id in vocab.items():
        if piece_id in special or sp.is_byte(piece_id) or len(piece) < 2:
            continue
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in vocab and right in vocab:
                merges.append((piece_id, vocab[left], vocab[right], left, right))
    merges.sort()
    bos, eos = sp.id_to_piece(sp.bos_id()), sp.id_to_piece(sp.eos_id())
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": sp.id_to_piece(i),
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i in special
        ],
        # SentencePiece with identity normalization and a dummy prefix: spaces become the
        # visible space and one is put in front.
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": SPACE},
                {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
            ],
        },
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": bos, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": bos, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": bos, "type_id": 1}},
                {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {bos: {"id": bos, "ids": [sp.bos_id()], "tokens": [bos]}},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": sp.id_to_piece(sp.unk_id()),
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [[left, right] for *_, left, right in merges],
        },
        "_eos": eos,
    }


def hf_files(model_proto: bytes, max_length: int) -> dict[str, bytes]:
    """File name -> contents, to write beside tokenizer.model."""
    sp = spm.SentencePieceProcessor(model_proto=model_proto)
    tokenizer = tokenizer_json(sp)
    eos = tokenizer.pop("_eos")
    bos, unk = sp.id_to_piece(sp.bos_id()), sp.id_to_piece(sp.unk_id())
    config = {
        # The generic class runs tokenizer.json as written, which gives SentencePiece's ids
        # exactly. transformers' LlamaTokenizer class replaces the normalizer with a Metaspace
        # pre-tokenizer that adds no "▁" in front of a text that starts with a space (a line
        # indented by one space gets one token fewer than in LLaMA's own tokenizer).
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos,
        "eos_token": eos,
        "unk_token": unk,
        "pad_token": None,
        "add_bos_token": True,  # LLaMA: BOS in front, no EOS
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": max_length,
    }
    special = {"bos_token": bos, "eos_token": eos, "unk_token": unk}

    def dump(data: Any) -> bytes:
        return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

    return {
        "tokenizer.json": dump(tokenizer),
        "tokenizer_config.json": dump(config),
        "special_tokens_map.json": dump(special),
    }
