"""Write a transformers Llama-family model as an fp32 GGUF file (the input of llama.cpp's quantizer).

Why not llama.cpp's convert_hf_to_gguf.py: it is not installed by llama-cpp-python (only its sdist carries it,
with a ~22k-line `conversion/` package), it needs `sentencepiece` even for BPE models, and it refuses tokenizers
whose pre-tokenizer hash it does not know (any custom or test tokenizer). This writer covers the `llama` GGUF
architecture (Llama 1-3, Mistral, SmolLM, TinyLlama ...) with the `gguf` package (llama.cpp's own Python library):

* hyper-parameters as llama.cpp reads them; Q and K projections permuted to llama.cpp's rotary layout (the inverse
  of what transformers' GGUF loader undoes on load);
* tokenizer: copied key by key from the source GGUF when the model came from one (the embedded model, any .gguf),
  which keeps llama.cpp's exact pre-tokenizer; otherwise converted from a byte-level BPE `tokenizer.json`
  (tokens, types, merges, special ids and chat template via `gguf.SpecialVocab`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from safepeft.errors import IncompatibleArtifactError

log = logging.getLogger(__name__)
ARCHITECTURES = ("llama", "mistral")
_CONTROL, _USER_DEFINED, _NORMAL, _UNUSED = 3, 4, 1, 5


def permute(weight: Any, n_head: int) -> Any:
    """transformers' (n_head * head_dim, in) rotary layout -> llama.cpp's interleaved layout."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def write_gguf(model: Any, tokenizer: Any, path: Path, source_gguf: Path | None, name: str) -> dict[str, Any]:
    """Write ``model`` (fp32, no adapter) to ``path``; returns facts for the manifest (tokenizer origin)."""
    import gguf

    config = model.config
    if config.model_type not in ARCHITECTURES:
        raise IncompatibleArtifactError(
            f"GGUF export supports Llama-architecture models ({', '.join(ARCHITECTURES)}); this model is "
            f"{config.model_type!r}.",
            "Use --scheme int8 / int4 / int8-dynamic, or export with llama.cpp's convert_hf_to_gguf.py.",
        )
    writer = gguf.GGUFWriter(str(path), "llama")
    _hparams(writer, config, name)
    if source_gguf is not None:
        origin = _copy_tokenizer(writer, source_gguf)
    else:
        origin = _hf_tokenizer(writer, tokenizer, config.vocab_size)
    _tensors(writer, model, config)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"tokenizer_origin": origin}


def _hparams(writer: Any, config: Any, name: str) -> None:
    import gguf

    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = getattr(config, "rope_parameters", None) or {}
    scaling = rope.get("rope_type", "default") if rope else (getattr(config, "rope_scaling", None) or {}).get("type")
    if scaling not in (None, "default", "linear"):
        raise IncompatibleArtifactError(
            f"GGUF export does not handle rope scaling {scaling!r}.",
            "Use --scheme int8 / int4 / int8-dynamic, or export with llama.cpp's convert_hf_to_gguf.py.",
        )
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    writer.add_rope_dimension_count(head_dim)
    if scaling == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope.get("factor") or config.rope_scaling["factor"]))
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)


def _copy_tokenizer(writer: Any, source: Path) -> str:
    import gguf

    reader = gguf.GGUFReader(str(source))
    for field in reader.fields.values():
        if field.name.startswith("tokenizer."):
            sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub_type)
    return f"gguf:{source.name}"


def _hf_tokenizer(writer: Any, tokenizer: Any, vocab_size: int) -> str:
    import tempfile

    import gguf

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    decoder = (spec.get("decoder") or {}).get("type")
    if spec["model"]["type"] != "BPE" or decoder != "ByteLevel":
        raise IncompatibleArtifactError(
            f"GGUF export converts byte-level BPE tokenizers only (this one: model {spec['model']['type']}, "
            f"decoder {decoder}).", "Quantize from a .gguf source, or export with llama.cpp's convert_hf_to_gguf.py.",
        )
    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    added = {t.content: t.special for t in tokenizer.backend_tokenizer.get_added_tokens_decoder().values()}
    tokens, types = [], []
    for i in range(vocab_size):
        token = by_id.get(i)
        tokens.append(token if token is not None else f"[PAD{i}]")
        types.append(_UNUSED if token is None else _CONTROL if added.get(token) else
                     _USER_DEFINED if token in added else _NORMAL)
    writer.add_tokenizer_model("gpt2")
    # llama.cpp picks its pre-tokenizer regex by name; a plain GPT-2 byte-level split is "gpt-2", anything
    # else gets llama.cpp's default (exact for tokenizers without merges, approximate otherwise).
    pre = spec.get("pre_tokenizer") or {}
    pre_name = "gpt-2" if pre.get("type") == "ByteLevel" and pre.get("use_regex", True) else "default"
    if pre_name == "default" and spec["model"].get("merges"):
        log.warning("GGUF export: pre-tokenizer %s mapped to llama.cpp's default regex", pre.get("type"))
    writer.add_tokenizer_pre(pre_name)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    with tempfile.TemporaryDirectory() as tokenizer_dir:  # SpecialVocab reads the tokenizer files
        tokenizer.save_pretrained(tokenizer_dir)
        special = gguf.SpecialVocab(tokenizer_dir, load_merges=True, n_vocab=vocab_size)
    if not special.merges:  # llama.cpp requires merges for BPE vocabularies, and GGUF has no empty arrays
        raise IncompatibleArtifactError("GGUF export: the tokenizer has no BPE merges.",
                                        "Use a trained BPE tokenizer, or another --scheme.")
    special.add_to_gguf(writer)
    if getattr(tokenizer, "chat_template", None) and not special.chat_template:
        writer.add_chat_template(tokenizer.chat_template)
    return f"hf:{pre_name}"


def _tensors(writer: Any, model: Any, config: Any) -> None:
    import gguf

    names = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    tied = getattr(config, "tie_word_embeddings", False)
    for key, tensor in model.state_dict().items():
        if tied and key == "lm_head.weight":
            continue  # llama.cpp reuses token_embd when there is no output tensor
        target = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise IncompatibleArtifactError(f"GGUF export: no llama.cpp name for tensor {key!r}.",
                                            "Export with llama.cpp's convert_hf_to_gguf.py.")
        data = tensor.detach().float().cpu().numpy()
        if key.endswith("q_proj.weight"):
            data = permute(data, config.num_attention_heads)
        elif key.endswith("k_proj.weight"):
            data = permute(data, config.num_key_value_heads)
        writer.add_tensor(target, data)
