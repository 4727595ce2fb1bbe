"""HFGenerator: batched generation and shared-prefix log-likelihood on a transformers model.

Generation sorts prompts by token length into buckets so that a batch carries little padding, pads on the left, and
restores the caller's order. Log-likelihood encodes each distinct context once and scores all its continuations from
a copy of its KV cache, which is what makes multiple-choice benchmarks cheap (~3x on the embedded model).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

from safepeft import progress
from safepeft.models.loader import LoadedModel
from safepeft.records.generation import GenParams, LoglikelihoodRequest, Prompt


class HFGenerator:
    """Generator over a loaded transformers (optionally PEFT) model."""

    def __init__(self, loaded: LoadedModel, batch_size: int = 16, progress: bool = True) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.batch_size = batch_size
        self.progress = progress

    def identity(self) -> dict[str, Any]:
        return {
            "backend": "hf",
            "model": self.loaded.fingerprint,
            "adapter": self.loaded.adapter_fingerprint,
            "dtype": self.loaded.dtype,
        }

    # -- prompts -----------------------------------------------------------------------------------------------
    def render(self, prompt: Prompt, system_prompt: str | None = None, chat: bool = True) -> str:
        """The exact text fed to the model: chat-templated, with the assistant turn opened (or continued)."""
        if isinstance(prompt, str) and not chat:
            return prompt
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
        if system_prompt is not None and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system_prompt})
        prefill = messages[-1]["role"] == "assistant"
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=not prefill, continue_final_message=prefill
        )

    def _encode(self, text: str, raw: bool) -> list[int]:
        # A chat template already writes BOS/special tokens; raw text gets the tokenizer's own.
        return self.tokenizer(text, add_special_tokens=raw)["input_ids"]

    # -- generation --------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[str]:
        raw = not params.chat
        texts = [self.render(p, params.system_prompt, params.chat) for p in prompts]
        encoded = [self._encode(t, raw and isinstance(p, str)) for t, p in zip(texts, prompts)]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        outputs: list[str] = [""] * len(encoded)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        with progress.bar("generate", len(prompts), self.progress and len(batches) > 1) as advance:
            for index, batch in enumerate(batches):
                decoded = self._generate_batch([encoded[i] for i in batch], params, index)
                for i, text in zip(batch, decoded):
                    outputs[i] = _cut_at_stop(text, params.stop)
                advance(len(batch))
        return outputs

    def _generate_batch(self, ids: list[list[int]], params: GenParams, batch_index: int) -> list[str]:
        from transformers import GenerationConfig

        batch = self.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt").to(self.loaded.device)
        sample = params.temperature > 0
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=sample,
            temperature=params.temperature if sample else None,
            top_p=params.top_p if sample else None,
            top_k=None,
            eos_token_id=self._eos_ids(),
            pad_token_id=self.tokenizer.pad_token_id,
        )
        if sample:
            torch.manual_seed(params.seed + batch_index)
        out = self.model.generate(**batch, generation_config=config)
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def _eos_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        return sorted(i for i in ids if i is not None)

    # -- log-likelihood ----------------------------------------------------------------------------------------
    @torch.inference_mode()
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        groups: dict[str, list[int]] = {}
        contexts: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            text = self.render(request.context, request.system_prompt)
            if text not in contexts:
                contexts[text] = self._encode(text, raw=isinstance(request.context, str))
            groups.setdefault(text, []).append(i)
        scores = [0.0] * len(requests)
        with progress.bar("loglikelihood", len(groups), self.progress and len(groups) > 1) as advance:
            for text, members in groups.items():
                continuations = [self.tokenizer(requests[i].continuation, add_special_tokens=False)["input_ids"]
                                 for i in members]
                for i, value in zip(members, self._score_shared(contexts[text], continuations)):
                    scores[i] = value
                advance()
        return scores

    def _score_shared(self, context: list[int], continuations: list[list[int]]) -> list[float]:
        """One forward of the context, then all continuations in one batch from copies of its KV cache."""
        device = self.loaded.device
        ctx = torch.tensor([context], device=device)
        out = self.model(input_ids=ctx, use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # (V,) predicts each continuation's 1st token
        scores = [float(first[c[0]]) if c else 0.0 for c in continuations]
        rest = [(j, c) for j, c in enumerate(continuations) if len(c) > 1]
        for start in range(0, len(rest), self.batch_size):
            chunk = rest[start : start + self.batch_size]
            width = max(len(c) - 1 for _, c in chunk)
            inputs = torch.full((len(chunk), width), self.tokenizer.pad_token_id, device=device)
            mask = torch.zeros((len(chunk), len(context) + width), dtype=torch.long, device=device)
            mask[:, : len(context)] = 1
            for row, (_, c) in enumerate(chunk):  # right padding: pads sit after the real tokens
                inputs[row, : len(c) - 1] = torch.tensor(c[:-1])
                mask[row, len(context) : len(context) + len(c) - 1] = 1
            cache = copy.deepcopy(out.past_key_values)
            cache.batch_repeat_interleave(len(chunk))
            logits = self.model(input_ids=inputs, attention_mask=mask, past_key_values=cache).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1)  # (n, width, V)
            for row, (j, c) in enumerate(chunk):
                targets = torch.tensor(c[1:], device=device)
                scores[j] += float(logprobs[row, : len(c) - 1].gather(-1, targets[:, None]).sum())
        return scores


@torch.inference_mode()
def naive_loglikelihood(generator: HFGenerator, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
    """Reference scorer: one full forward pass per (context + continuation). Used by tests and benchmarks."""
    scores = []
    for request in requests:
        text = generator.render(request.context, request.system_prompt)
        context = generator._encode(text, raw=isinstance(request.context, str))
        cont = generator.tokenizer(request.continuation, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([context + cont], device=generator.loaded.device)
        logprobs = torch.log_softmax(generator.model(input_ids=ids).logits[0].float(), dim=-1)
        positions = torch.arange(len(context) - 1, len(context) + len(cont) - 1)
        scores.append(float(logprobs[positions, torch.tensor(cont)].sum()) if cont else 0.0)
    return scores


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = len(text)
    for stop in stops:
        index = text.find(stop)
        if index != -1:
            cut = min(cut, index)
    return text[:cut]
