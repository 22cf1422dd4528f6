"""An openai-whisper checkpoint made from the bundled CTranslate2 model, so the openai-whisper
backend can be tested and benchmarked on the very same weights as faster-whisper without
downloading anything. CTranslate2's `model.bin` is a flat list of named arrays (its layout is
written by `ctranslate2.specs.model_spec.ModelSpec._serialize`); this reads it and renames the
arrays to the `Whisper` module's state dict, splitting the fused query/key/value projections."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np

# ctranslate2/types.h DataType order
_DTYPES: dict[int, Any] = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def _read_ct2(path: Path) -> dict[str, np.ndarray]:
    def number(f: IO[bytes], fmt: str) -> int:
        return int(struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0])

    def string(f: IO[bytes]) -> str:
        return f.read(number(f, "H"))[:-1].decode()

    arrays: dict[str, np.ndarray] = {}
    with path.open("rb") as f:
        number(f, "I")  # binary version
        string(f)  # spec name
        number(f, "I")  # spec revision
        for _ in range(number(f, "I")):
            name = string(f)
            dims = [number(f, "I") for _ in range(number(f, "B"))]
            dtype = _DTYPES[number(f, "B")]
            arrays[name] = np.frombuffer(f.read(number(f, "I")), dtype=dtype).reshape(dims)
        for _ in range(number(f, "I")):
            alias, target = string(f), string(f)
            arrays[alias] = arrays[target]
    return arrays


def _layers(arrays: dict[str, np.ndarray], stack: str) -> int:
    return len({k.split("/")[1] for k in arrays if re.match(rf"{stack}/layer_\d+/", k)})


def ct2_to_openai_checkpoint(model_dir: Path, out: Path) -> Path:
    """Write `out` (a `whisper.load_model` checkpoint) from the CTranslate2 model in `model_dir`."""
    import torch

    ct2 = _read_ct2(model_dir / "model.bin")
    state: dict[str, Any] = {}

    def put(name: str, array: np.ndarray) -> None:
        state[name] = torch.from_numpy(np.array(array, dtype=np.float16))

    def linear(dst: str, src: str) -> None:
        put(f"{dst}.weight", ct2[f"{src}/weight"])
        put(f"{dst}.bias", ct2[f"{src}/bias"])

    def norm(dst: str, src: str) -> None:
        put(f"{dst}.weight", ct2[f"{src}/gamma"])
        put(f"{dst}.bias", ct2[f"{src}/beta"])

    def attention(dst: str, fused: str, out_proj: str, query: str | None = None) -> None:
        # self-attention fuses q,k,v in one projection; cross-attention keeps q apart and fuses k,v
        weight, bias = ct2[f"{fused}/weight"], ct2[f"{fused}/bias"]
        names = ["query", "key", "value"] if query is None else ["key", "value"]
        if query is not None:
            linear(f"{dst}.query", query)
        for part, w, b in zip(names, np.split(weight, len(names)), np.split(bias, len(names)), strict=True):
            put(f"{dst}.{part}.weight", w)
            if part != "key":  # whisper's key projection has no bias (CTranslate2 stores zeros)
                put(f"{dst}.{part}.bias", b)
        linear(f"{dst}.out", out_proj)

    def mlp(dst: str, src: str) -> None:
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    for conv in ("conv1", "conv2"):
        linear(f"encoder.{conv}", f"encoder/{conv}")
    put("encoder.positional_embedding", ct2["encoder/position_encodings/encodings"])
    for i in range(_layers(ct2, "encoder")):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        attention(f"{dst}.attn", f"{src}/self_attention/linear_0", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        mlp(dst, src)
    norm("encoder.ln_post", "encoder/layer_norm")

    put("decoder.token_embedding.weight", ct2["decoder/embeddings/weight"])
    put("decoder.positional_embedding", ct2["decoder/position_encodings/encodings"])
    for i in range(_layers(ct2, "decoder")):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        attention(f"{dst}.attn", f"{src}/self_attention/linear_0", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        attention(
            f"{dst}.cross_attn",
            f"{src}/attention/linear_1",
            f"{src}/attention/linear_2",
            query=f"{src}/attention/linear_0",
        )
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        mlp(dst, src)
    norm("decoder.ln", "decoder/layer_norm")

    conv1 = ct2["encoder/conv1/weight"]
    vocab, text_state = ct2["decoder/embeddings/weight"].shape
    dims = {
        "n_mels": int(conv1.shape[1]),
        "n_vocab": int(vocab),
        "n_audio_ctx": int(ct2["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(conv1.shape[0]),
        "n_audio_head": int(ct2["encoder/num_heads"]),
        "n_audio_layer": _layers(ct2, "encoder"),
        "n_text_ctx": int(ct2["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(text_state),
        "n_text_head": int(ct2["decoder/num_heads"]),
        "n_text_layer": _layers(ct2, "decoder"),
    }
    torch.save({"dims": dims, "model_state_dict": state}, out)
    return out
