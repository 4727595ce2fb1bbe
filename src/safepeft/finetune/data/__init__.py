"""Built-in training data (JSONL package data); see ``safepeft.finetune.builtin``."""
