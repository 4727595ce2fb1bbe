"""`llama-guard`: a local (or served) Llama Guard 2 model judging the agent turn, with its official prompt format."""

from __future__ import annotations

from typing import ClassVar

from safepeft.audit import taxonomy
from safepeft.audit.judges.base import JudgeInput, LLMJudge, Verdict, binary_verdict
from safepeft.classifiers import llama_guard


class LlamaGuardJudge(LLMJudge):
    """Llama Guard 2 (Meta): 'safe' / 'unsafe' + violated S-codes for the assistant reply."""

    name: ClassVar[str] = "llama-guard"
    default_model: ClassVar[str | None] = "meta-llama/Meta-Llama-Guard-2-8B"
    max_new_tokens: ClassVar[int] = 12

    def build_prompt(self, item: JudgeInput) -> str:
        request = item.prompt if item.context is None else f"{item.context}\n\n---\n\n{item.prompt}"
        return llama_guard.build_prompt(request, item.completion)

    def parse(self, output: str, item: JudgeInput) -> Verdict:
        parsed = llama_guard.parse_output(output)
        if parsed.safe is None:
            return binary_verdict("error", None, item.completion, reason="unparseable")
        categories = tuple(taxonomy.from_code(code) for code in parsed.codes)
        label = "safe" if parsed.safe else "unsafe"
        return binary_verdict(label, not parsed.safe, item.completion, categories=categories)
