"""HFGenerator: batched generation and shared-prefix log-likelihood on a transformers model.

Generation sorts prompts by token length into buckets so that a batch carries little padding, pads on the left, and
restores the caller's order. Log-likelihood encodes each distinct context once and scores all its continuations from
a copy of its KV cache, which is what makes multiple-choice benchmarks cheap (~3x on the embedded model).
Progress moves per item: rows of a batch count as they reach EOS (``models.finished_rows``), the rest at its end.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from safepeft import progress
from safepeft.models.batch_size import AUTO, BatchSize, length_bucket, resolve_batch_size
from safepeft.models.finished_rows import FinishedRows
from safepeft.records.generation import GenParams, LoglikelihoodRequest, Prompt

if TYPE_CHECKING:  # a runtime import would close the loader -> hf -> loader circle
    from safepeft.models.loader import LoadedModel


def render_prompt(tokenizer: Any, prompt: Prompt, system_prompt: str | None = None, chat: bool = True) -> str:
    """``prompt`` as the text a model is fed: chat-templated with the assistant turn opened, or continued when the
    chat ends with an assistant message (prefill); a plain string with ``chat=False`` is sent as written. Every
    local backend (transformers, vLLM) renders through this, so they see the same text."""
    if isinstance(prompt, str) and not chat:
        return prompt
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if system_prompt is not None and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
    prefill = messages[-1]["role"] == "assistant"
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=not prefill,
                                         continue_final_message=prefill)


def encode_text(tokenizer: Any, text: str, raw: bool) -> list[int]:
    """Token ids of rendered text: a chat template already writes BOS/special tokens; raw text gets the tokenizer's."""
    return list(tokenizer(text, add_special_tokens=raw)["input_ids"])


class HFGenerator:
    """Generator over a loaded transformers (optionally PEFT) model."""

    progress_every_steps: int = 8
    """Decoding steps between reads of how many rows of a batch reached EOS (per-item progress)."""

    def __init__(self, loaded: LoadedModel, batch_size: BatchSize = 16, progress: bool = True) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.batch_size = batch_size
        """Sequences per forward, or ``"auto"``: resolved per length by ``models.batch_size`` on first use."""
        self.progress = progress
        self._resolved: dict[int, int] = {}  # length bucket -> batch, for batch_size="auto"

    def identity(self) -> dict[str, Any]:
        return {
            "backend": "hf",
            "model": self.loaded.fingerprint,
            "adapter": self.loaded.adapter_fingerprint,
            "dtype": self.loaded.dtype,
        }

    def _batch_for(self, max_length: int) -> int:
        """The batch size for sequences of up to ``max_length`` tokens (``batch_size`` itself unless it is auto)."""
        if self.batch_size != AUTO:
            return int(self.batch_size)
        bucket = length_bucket(max_length)
        if bucket not in self._resolved:
            self._resolved[bucket] = resolve_batch_size(AUTO, self.loaded, max_length=bucket)
        return self._resolved[bucket]

    # -- prompts -----------------------------------------------------------------------------------------------
    def render(self, prompt: Prompt, system_prompt: str | None = None, chat: bool = True) -> str:
        """The exact text fed to the model: chat-templated, with the assistant turn opened (or continued)."""
        return render_prompt(self.tokenizer, prompt, system_prompt, chat)

    def _encode(self, text: str, raw: bool) -> list[int]:
        return encode_text(self.tokenizer, text, raw)

    # -- generation --------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[str]:
        raw = not params.chat
        texts = [self.render(p, params.system_prompt, params.chat) for p in prompts]
        encoded = [self._encode(t, raw and isinstance(p, str)) for t, p in zip(texts, prompts, strict=True)]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        outputs: list[str] = [""] * len(encoded)
        size = self._batch_for(max(map(len, encoded), default=0) + params.max_new_tokens)
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        show = self.progress and len(batches) > 1
        counted = progress.reports(show)  # else the rows would be counted for a bar nobody sees
        with progress.item_bar("generate", len(prompts), show) as advance:
            for index, batch in enumerate(batches):
                rows = FinishedRows(self._eos_ids(), len(batch), self.loaded.device, advance,
                                    self.progress_every_steps) if counted else None
                decoded = self._generate_batch([encoded[i] for i in batch], params, index, rows)
                for i, text in zip(batch, decoded, strict=True):
                    outputs[i] = _cut_at_stop(text, params.stop)
                if rows is not None:
                    rows.finish(len(batch))  # rows that ran to max_new_tokens
        return outputs

    def _generate_batch(self, ids: list[list[int]], params: GenParams, batch_index: int,
                        rows: FinishedRows | None = None) -> list[str]:
        from transformers import GenerationConfig, StoppingCriteriaList

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
            # peft (0.21) re-injects prompt-learning virtual tokens unless it sees `past_key_values`, which
            # transformers 5.2x passes as `cache`: with a cache the decode diverges after the first token.
            use_cache=not prompt_learning(self.model),
        )
        if sample:
            torch.manual_seed(params.seed + batch_index)
        criteria = {"stopping_criteria": StoppingCriteriaList([rows])} if rows is not None else {}
        out = self.model.generate(**batch, generation_config=config, **criteria)
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
        with progress.item_bar("loglikelihood", len(requests), self.progress and len(groups) > 1) as advance:
            for text, members in groups.items():
                continuations = [self.tokenizer(requests[i].continuation, add_special_tokens=False)["input_ids"]
                                 for i in members]
                score = self._score_full if prompt_learning(self.model) else self._score_shared
                for i, value in zip(members, score(contexts[text], continuations), strict=True):
                    scores[i] = value
                advance(len(members))
        return scores

    def _score_shared(self, context: list[int], continuations: list[list[int]]) -> list[float]:
        """One forward of the context, then all continuations in one batch from copies of its KV cache."""
        device = self.loaded.device
        ctx = torch.tensor([context], device=device)
        out = self.model(input_ids=ctx, use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # (V,) predicts each continuation's 1st token
        scores = [float(first[c[0]]) if c else 0.0 for c in continuations]
        rest = [(j, c) for j, c in enumerate(continuations) if len(c) > 1]
        size = self._batch_for(len(context) + max((len(c) for c in continuations), default=0))
        for start in range(0, len(rest), size):
            chunk = rest[start : start + size]
            width = max(len(c) - 1 for _, c in chunk)
            inputs = torch.full((len(chunk), width), self.tokenizer.pad_token_id, device=device)
            mask = torch.zeros((len(chunk), len(context) + width), dtype=torch.long, device=device)
            mask[:, : len(context)] = 1
            for row, (_, c) in enumerate(chunk):  # right padding: pads sit after the real tokens
                inputs[row, : len(c) - 1] = torch.tensor(c[:-1])
                mask[row, len(context) : len(context) + len(c) - 1] = 1
            cache = copy.deepcopy(_output_cache(out))
            cache.batch_repeat_interleave(len(chunk))
            logits = self.model(input_ids=inputs, attention_mask=mask, **{_cache_keyword(self.model): cache}).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1)  # (n, width, V)
            for row, (j, c) in enumerate(chunk):
                targets = torch.tensor(c[1:], device=device)
                scores[j] += float(logprobs[row, : len(c) - 1].gather(-1, targets[:, None]).sum())
        return scores


    def _score_full(self, context: list[int], continuations: list[list[int]]) -> list[float]:
        """Each context + continuation in one forward, no KV cache: for prompt-learning adapters, whose forward
        prepends virtual tokens to every call (a cached second call would get them again in mid-sequence)."""
        device = self.loaded.device
        scores = []
        size = self._batch_for(len(context) + max((len(c) for c in continuations), default=0))
        for start in range(0, len(continuations), size):
            chunk = continuations[start : start + size]
            width = len(context) + max(len(c) for c in chunk)
            inputs = torch.full((len(chunk), width), self.tokenizer.pad_token_id, device=device)
            mask = torch.zeros((len(chunk), width), dtype=torch.long, device=device)
            for row, c in enumerate(chunk):  # right padding
                inputs[row, : len(context) + len(c)] = torch.tensor(context + c)
                mask[row, : len(context) + len(c)] = 1
            logprobs = torch.log_softmax(_token_logits(self.model, inputs, mask).float(), dim=-1)
            for row, c in enumerate(chunk):
                positions = torch.arange(len(context) - 1, len(context) + len(c) - 1, device=device)
                targets = torch.tensor(c, device=device)
                scores.append(float(logprobs[row, positions, targets].sum()) if c else 0.0)
        return scores


def prompt_learning(model: Any) -> bool:
    """True for a PEFT model whose active adapter is prompt learning (prompt tuning, p-tuning): its forward
    prepends virtual tokens, so its logits are longer than its inputs and a KV cache cannot be reused across calls."""
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def _token_logits(model: Any, ids: Any, mask: Any = None) -> Any:
    """Logits aligned with ``ids``: the positions of prompt-learning virtual tokens (prepended by PEFT) dropped."""
    logits = model(input_ids=ids, attention_mask=mask).logits
    return logits[:, logits.shape[1] - ids.shape[1] :]


def _output_cache(out: Any) -> Any:
    """The KV cache of a forward's output: `cache` since transformers 5.2x, `past_key_values` before (the old name
    still works there but warns, and is removed in 5.40)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _cache_keyword(model: Any) -> str:
    """The forward keyword that takes a KV cache: `cache` where the model has it, `past_key_values` on older
    transformers (pyproject allows >=4.56)."""
    import inspect

    forward = getattr(model, "get_base_model", lambda: model)().forward
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


@torch.inference_mode()
def naive_loglikelihood(generator: HFGenerator, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
    """Reference scorer: one full forward pass per (context + continuation). Used by tests and benchmarks."""
    scores = []
    for request in requests:
        text = generator.render(request.context, request.system_prompt)
        context = generator._encode(text, raw=isinstance(request.context, str))
        cont = generator.tokenizer(request.continuation, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([context + cont], device=generator.loaded.device)
        logprobs = torch.log_softmax(_token_logits(generator.model, ids)[0].float(), dim=-1)
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
