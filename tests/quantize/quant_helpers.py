"""A tiny model with a trained byte-level BPE tokenizer (GGUF needs real merges) and k-quant-friendly sizes."""

from __future__ import annotations

from pathlib import Path


def bpe_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from safepeft.models.tiny import CHATML_TEMPLATE, SPECIAL_TOKENS

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = ["the quick brown fox jumps over the lazy dog", "hello world, how are you today?",
              "explain how to boil an egg step by step"] * 20
    backend.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def save_bpe_model(directory: Path, initializer_range: float = 0.05) -> Path:
    """Hidden 256 (a multiple of llama.cpp's k-quant block), 2 layers, GQA 4/2 heads."""
    from safepeft.models.tiny import tiny_llama

    tokenizer = bpe_tokenizer()
    model = tiny_llama(0, vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_attention_heads=4,
                       num_key_value_heads=2, initializer_range=initializer_range)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
