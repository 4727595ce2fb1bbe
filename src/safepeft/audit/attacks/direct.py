"""`direct`: no attack; the request as written (the baseline every other attack is compared with)."""

from __future__ import annotations

import random

from safepeft.audit.attacks.base import TransformAttack


class Direct(TransformAttack):
    """No attack: the harmful request is sent unchanged."""

    name = "direct"
    description = "No attack: the harmful request is sent unchanged."
    paper = "https://arxiv.org/abs/2307.02483"

    def apply(self, request: str, rng: random.Random) -> str:
        return request

    def decode(self, prompt: object) -> str | None:
        return prompt if isinstance(prompt, str) else None
