"""Tiny in-process models for tests and examples: no downloads, odd sizes so shape bugs cannot hide.

The tokenizer is byte-level BPE with no merges (every byte is a token), so any text round-trips, with ChatML special
tokens and a ChatML chat template like the embedded SmolLM2's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] }}"
    "{% if not (loop.last and message['role'] == 'assistant' and continue_final_message is defined "
    "and continue_final_message) %}{{ '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({char: len(SPECIAL_TOKENS) + i for i, char in enumerate(alphabet)})
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS,
        padding_side="left",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def tiny_llama(seed: int = 0, **overrides: Any) -> Any:
    """A seeded random LlamaForCausalLM with odd sizes (hidden 36, 2 layers, 3 heads, 1 KV head by default)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer_size = len(tiny_tokenizer())
    settings: dict[str, Any] = dict(
        vocab_size=tokenizer_size, hidden_size=36, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=3, num_key_value_heads=1, max_position_embeddings=2048,
        bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=True,
    )
    settings.update(overrides)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**settings))
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 2
    return model.eval()


def save_tiny_model(directory: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """Write a tiny model + tokenizer as an ordinary HF directory, loadable with `--model DIR`."""
    directory = Path(directory)
    tiny_llama(seed, **overrides).save_pretrained(directory)
    tiny_tokenizer().save_pretrained(directory)
    return directory
