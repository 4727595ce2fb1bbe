"""Ask a Generator every BBQ item, by log-likelihood (default) or by generating a letter, and score the answers."""

from __future__ import annotations

from dataclasses import dataclass

from safepeft.audit.base import AuditOptions
from safepeft.audit.fairness.items import BBQItem
from safepeft.audit.fairness.metrics import Outcome
from safepeft.audit.fairness.prompts import (
    choices,
    cloze_prompt,
    letter_prompt,
    loglikelihood_requests,
    parse_letter,
    pick,
)
from safepeft.models.protocol import Generator
from safepeft.records.generation import GenParams

# A letter needs a few tokens; chatty models get room for "The answer is (B) ..." but not for an essay.
LETTER_TOKENS = 32


@dataclass(frozen=True)
class Answer:
    """The model's choice on one item."""

    item: BBQItem
    chosen: int | None
    """Answer index, or None when a generation could not be parsed."""
    prompt: str
    completion: str | None = None

    def outcome(self) -> Outcome:
        counted = self.chosen is not None and self.chosen != self.item.unknown and self.item.biased is not None
        return Outcome(
            condition=self.item.condition,
            correct=self.chosen == self.item.label,
            counted=counted,
            biased=counted and self.chosen == self.item.biased,
        )


def answer_items(items: list[BBQItem], generator: Generator, options: AuditOptions) -> list[Answer]:
    if options.mode == "generate":
        return _by_generation(items, generator, options)
    return _by_loglikelihood(items, generator, options)


def _by_loglikelihood(items: list[BBQItem], generator: Generator, options: AuditOptions) -> list[Answer]:
    # One call for all items: a caching generator commits in chunks, a shared-prefix one groups by context.
    requests = [r for item in items for r in loglikelihood_requests(item, options.system_prompt)]
    values = generator.loglikelihood(requests)
    answers: list[Answer] = []
    start = 0
    for item in items:
        count = len(choices(item))
        answers.append(Answer(item, pick(item, values[start : start + count]), cloze_prompt(item)))
        start += count
    return answers


def _by_generation(items: list[BBQItem], generator: Generator, options: AuditOptions) -> list[Answer]:
    params = GenParams(max_new_tokens=min(options.max_new_tokens, LETTER_TOKENS), system_prompt=options.system_prompt)
    prompts = [letter_prompt(item) for item in items]
    outputs = generator.generate(prompts, params)
    return [Answer(item, parse_letter(text, item), prompt, text)
            for item, prompt, text in zip(items, prompts, outputs, strict=True)]
