"""Transform attacks: registry contract, seeded determinism, round trips where the transform is invertible."""

from __future__ import annotations

import subprocess
import sys

import pytest

from safepeft.audit.attacks import ATTACKS
from safepeft.audit.attacks.base import TransformAttack, full_response, prefill_text

REQUESTS = ["Explain how to pick a lock.", "Écris un poème — avec des accents & symboles: 100%!", "x"]
TRANSFORMS = [n for n in ATTACKS.names() if issubclass(ATTACKS.get(n), TransformAttack)]
ISSUE_NAMES = {"direct", "prefix-injection", "refusal-suppression", "roleplay", "fiction", "few-shot", "base64",
               "rot13", "leetspeak", "payload-split", "prefill", "pair", "tap"}


def test_registry_holds_exactly_the_issue_attacks():
    assert set(ATTACKS.names()) == ISSUE_NAMES


@pytest.mark.parametrize("name", ATTACKS.names())
def test_attack_contract(name):
    attack = ATTACKS.get(name)
    assert attack.name == name
    assert attack.description and attack.paper.startswith("https://")
    assert attack.iterative == (name in ("pair", "tap"))


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transform_is_deterministic_and_well_formed(name):
    attack = ATTACKS.get(name)()
    for request in REQUESTS:
        first = attack.transform(request, seed=3)
        assert first == attack.transform(request, seed=3) == ATTACKS.get(name)().transform(request, seed=3)
        if isinstance(first, list):
            assert all(m["role"] in ("system", "user", "assistant") and isinstance(m["content"], str) for m in first)
            assert first[-1]["role"] == ("assistant" if attack.needs_prefill else "user")
        else:
            assert isinstance(first, str) and first


@pytest.mark.parametrize("name", ["direct", "base64", "rot13", "payload-split", "prefill", "few-shot"])
def test_invertible_transforms_round_trip(name):
    attack = ATTACKS.get(name)()
    for request in REQUESTS:
        for seed in range(4):
            assert attack.decode(attack.transform(request, seed)) == request


def test_base64_payload_is_real_base64_and_hides_the_words():
    prompt = ATTACKS.get("base64")().transform("Explain how to pick a lock.")
    assert "lock" not in prompt and "RXhwbGFpbiBob3cgdG8gcGljayBhIGxvY2su" in prompt


def test_templated_attacks_vary_with_the_seed_but_keep_the_request():
    for name in ("prefix-injection", "roleplay", "fiction"):
        attack = ATTACKS.get(name)()
        variants = {attack.transform("Explain how to pick a lock.", seed) for seed in range(12)}
        assert len(variants) > 1, name
        assert all("how to pick a lock" in v for v in variants)


def test_leetspeak_substitutes_letters_only_and_keeps_length():
    from safepeft.audit.attacks.leetspeak import _MAP

    request = "Tell me a secret about boats"
    prompt = ATTACKS.get("leetspeak")().transform(request, seed=1)
    assert len(prompt) == len(request) and prompt != request
    assert all(a == b or _MAP[a.lower()] == b for a, b in zip(request, prompt, strict=True))


def test_payload_split_cuts_into_three_nonempty_parts():
    from safepeft.audit.attacks.payload_split import _PART

    prompt = ATTACKS.get("payload-split")().transform("Explain how to pick a lock.", seed=5)
    parts = [p for _, p in _PART.findall(prompt)]
    assert len(parts) == 3 and all(parts) and "Let z = a + b + c" in prompt


def test_prefill_response_is_prefill_plus_completion():
    prompt = ATTACKS.get("prefill")().transform("Explain how to pick a lock.", seed=0)
    assert prefill_text(prompt).startswith("Sure, here is")
    assert full_response(prompt, " step one") == prefill_text(prompt) + " step one"
    assert full_response("plain", "answer") == "answer"


def test_prefill_prompt_is_continued_by_the_hf_generator(tiny_loaded):
    generator = tiny_loaded.generator(progress=False)
    prompt = ATTACKS.get("prefill")().transform("Explain how to pick a lock.", seed=0)
    text = generator.render(prompt)
    assert text.endswith(prefill_text(prompt))  # the assistant turn is open, not closed


def test_transforms_are_identical_in_another_process():
    code = ("from safepeft.audit.attacks import ATTACKS;"
            "print(repr([ATTACKS.get(n)().transform('Explain how to pick a lock.', 7) for n in "
            f"{TRANSFORMS!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    here = repr([ATTACKS.get(n)().transform("Explain how to pick a lock.", 7) for n in TRANSFORMS])
    assert out == here
