"""Jailbreak attacks: `--attack NAME` names an entry here. One small module per attack.

Transform attacks are pure, seeded functions of the request text (a template, an encoding, a chat prefill).
Iterative attacks (PAIR, TAP) search for a prompt with an attacker model and a 1-10 rater, querying the target
through any `Generator`; every query is stored in the run store, so a killed search repeats none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safepeft.registry import Registry

if TYPE_CHECKING:  # the base is named lazily below: importing it here would load its dependencies
    from safepeft.audit.attacks.base import Attack

ATTACKS: Registry[type[Attack]] = Registry("attack", "safepeft list attacks",
                                           base="safepeft.audit.attacks.base:Attack")

ATTACKS.register("direct", "safepeft.audit.attacks.direct:Direct")
ATTACKS.register("prefix-injection", "safepeft.audit.attacks.prefix_injection:PrefixInjection")
ATTACKS.register("refusal-suppression", "safepeft.audit.attacks.refusal_suppression:RefusalSuppression")
ATTACKS.register("roleplay", "safepeft.audit.attacks.roleplay:Roleplay")
ATTACKS.register("fiction", "safepeft.audit.attacks.fiction:Fiction")
ATTACKS.register("few-shot", "safepeft.audit.attacks.few_shot:FewShot")
ATTACKS.register("base64", "safepeft.audit.attacks.base64_encoding:Base64")
ATTACKS.register("rot13", "safepeft.audit.attacks.rot13:Rot13")
ATTACKS.register("leetspeak", "safepeft.audit.attacks.leetspeak:Leetspeak")
ATTACKS.register("payload-split", "safepeft.audit.attacks.payload_split:PayloadSplit")
ATTACKS.register("prefill", "safepeft.audit.attacks.prefill:Prefill")
ATTACKS.register("pair", "safepeft.audit.attacks.pair:PAIR")
ATTACKS.register("tap", "safepeft.audit.attacks.tap:TAP")
