"""An lm-eval `LM` over any safepeft Generator, so lm-eval's tasks score the model the audit loaded (with its adapter,
guard, quantization and run store), not a second copy lm-eval would load itself.

Chat mode only. The Generator protocol has no raw-text scoring: every backend (HF, llama.cpp) renders a
log-likelihood context through the chat template, the continuation being the start of the assistant's reply. So the
adapter asks lm-eval for chat prompts (``simple_evaluate(apply_chat_template=True)``): ``apply_chat_template`` hands
the messages back to lm-eval as an opaque string (a marker + JSON), which ``loglikelihood`` and ``generate_until``
decode into a chat for the Generator. That is lm-eval's own chat-template mode (no target delimiter before a
multiple-choice answer, a ``gen_prefix`` continued as an assistant prefill); numbers differ from lm-eval runs
without a chat template.

What the protocol cannot give: whether a continuation is the greedy one (``is_greedy`` is always False; the suite
refuses tasks of output type ``loglikelihood``, whose ``acc`` reads it) and rolling log-likelihood (perplexity).
"""

from __future__ import annotations

import json
from typing import Any

from lm_eval.api.model import LM

from safepeft.errors import ConfigError
from safepeft.models.protocol import Generator
from safepeft.records.generation import GenParams, LoglikelihoodRequest, Message, Prompt

CHAT_MARK = "\x00safepeft-chat\x00"
"""Starts a context that ``apply_chat_template`` wrote: the rest is the JSON list of messages."""
DEFAULT_MAX_GEN_TOKS = 256
"""lm-eval's own default for generate_until tasks that set no ``max_gen_toks``."""


class GeneratorLM(LM):
    """lm-eval model over a safepeft ``Generator`` (batched: each request type is one Generator call)."""

    def __init__(self, generator: Generator, system_prompt: str | None = None, seed: int = 0) -> None:
        super().__init__()
        self.generator = generator
        self.system_prompt = system_prompt
        self.seed = seed

    # -- chat --------------------------------------------------------------------------------------------------
    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        # Without a generation prompt lm-eval's last message is the assistant's gen_prefix: a prefill, which a
        # Generator continues when a chat ends with an assistant turn. So the messages alone say it all.
        return CHAT_MARK + json.dumps([{"role": m["role"], "content": m["content"]} for m in chat_history])

    @property
    def tokenizer_name(self) -> str:
        """Names lm-eval's request cache; the Generator's identity fixes how a chat is rendered."""
        return "safepeft-" + json.dumps(self.generator.identity(), sort_keys=True, default=str)

    def chat_template(self, chat_template: bool | str = False) -> str:
        return "the audited Generator's own (safepeft renders the chat)"

    # -- requests ----------------------------------------------------------------------------------------------
    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        batch = [LoglikelihoodRequest(context=to_prompt(r.args[0]), continuation=r.args[1],
                                      system_prompt=self.system_prompt) for r in requests]
        # is_greedy is unknown to the protocol; False is never read by the task types the suite accepts.
        return [(value, False) for value in self.generator.loglikelihood(batch)]

    def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
        raise ConfigError(
            "lm-eval perplexity tasks (output type loglikelihood_rolling) need raw-text scoring, which the safepeft "
            "Generator protocol does not offer: it scores a reply to a chat turn.",
            "Use multiple-choice or generate_until lm-eval tasks (mmlu, arc_easy, hellaswag, gsm8k ...).",
        )

    def generate_until(self, requests: list[Any]) -> list[str]:
        outputs: list[str | None] = [None] * len(requests)
        groups: dict[str, tuple[GenParams, list[int]]] = {}
        for index, request in enumerate(requests):
            params = self.gen_params(request.args[1])
            groups.setdefault(params.model_dump_json(), (params, []))[1].append(index)
        for params, members in groups.values():  # one Generator call per distinct setting, so it can batch
            texts = self.generator.generate([to_prompt(requests[i].args[0]) for i in members], params)
            for i, text in zip(members, texts, strict=True):
                outputs[i] = text
        return [text or "" for text in outputs]

    def gen_params(self, kwargs: dict[str, Any] | None) -> GenParams:
        """lm-eval generation kwargs -> GenParams (``until`` -> stop strings; greedy unless ``do_sample``)."""
        kwargs = dict(kwargs or {})
        until = kwargs.get("until") or ()
        stops = (until,) if isinstance(until, str) else tuple(until)
        sample = bool(kwargs.get("do_sample")) and float(kwargs.get("temperature") or 0.0) > 0
        return GenParams(
            max_new_tokens=int(kwargs.get("max_gen_toks") or DEFAULT_MAX_GEN_TOKS),
            temperature=float(kwargs["temperature"]) if sample else 0.0,
            top_p=float(kwargs.get("top_p") or 1.0) if sample else 1.0,
            seed=self.seed,
            system_prompt=self.system_prompt,
            stop=tuple(s for s in stops if s),
        )


def to_prompt(context: str) -> Prompt:
    """A context lm-eval built: the chat ``apply_chat_template`` encoded, or plain text (a user turn; lm-eval sends
    an empty one for unconditional scores, e.g. ``acc_mutual_info``)."""
    if context.startswith(CHAT_MARK):
        messages: list[Message] = json.loads(context[len(CHAT_MARK):])
        return messages
    return context
