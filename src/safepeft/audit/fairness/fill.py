"""Fill one BBQ template row with a pair of group words and write its four items (the BBQ jsonl schema)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from safepeft.audit.fairness.items import UNKNOWN_RESPONSES

_TEXT_FIELDS = (
    "Ambiguous_Context", "Disambiguating_Context", "Question_negative_stereotype", "Question_non_negative",
    "Answer_negative", "Answer_non_negative",
)
_A_BEFORE_VOWEL = re.compile(r"(\s[aA])(\s[aAeEiIoOuU])")


@dataclass(frozen=True)
class Pair:
    """What fills one template row: the two group words, their group tags and the lexical-diversity words."""

    name1: str
    name2: str
    info1: str
    info2: str
    word1: str
    word2: str
    stereotyped: list[str]


def slot(text: str, pair: Pair, lexical: bool) -> str:
    """Replace {{NAME1}}/{{NAME2}}/{{WORD1}}/{{WORD2}} and apply the BBQ generator's textual fixes."""
    text = text.replace("{{NAME1}}", pair.name1).replace("{{NAME2}}", pair.name2)
    if lexical:
        text = text.replace("{{WORD1}}", pair.word1).replace("{{WORD2}}", pair.word2)
    text = text.replace("lesbian man", "lesbian woman").replace("Latino woman", "Latina woman")
    # The generator turns every ' a <vowel>' into ' an <vowel>' (text-wide) once either name starts with a vowel.
    if re.match(r"[aeiou]", pair.name1.lower()) or re.match(r"[aeiou]", pair.name2.lower()):
        text = _A_BEFORE_VOWEL.sub(r"\1n\2", text).replace(" an European", " a European")
    return text


def answer_info(pair: Pair, answers: list[str], negative: str, non_negative: str, unknown: str) -> dict:
    """Tag the shuffled answers with groups: an answer takes the group of the name it contains.

    As in the generator, the name 'man' is padded to ' man' so that it does not match inside 'woman'. When both
    names occur in one answer ('tattoos' in 'no tattoos') the longer name wins; the generator let the second name
    win, which tags both answers of such templates alike, while the released files tag them apart (checked in the
    reproduction test).
    """
    info: dict[str, list[str]] = {f"ans{i}": ["", ""] for i in range(3)}
    names = [(" man" if name == "man" else name, group) for name, group in ((pair.name1, pair.info1),
                                                                           (pair.name2, pair.info2))]
    for text in (negative, non_negative):
        found = [(len(needle), order, needle, group) for order, (needle, group) in enumerate(names) if needle in text]
        if found:
            _, _, needle, group = max(found)
            info[f"ans{answers.index(text)}"] = [needle.lstrip(), group]
    info[f"ans{answers.index(unknown)}"] = [unknown, "unknown"]
    return info


def fill_row(
    row: dict[str, str], category: str, pair: Pair, rng: random.Random, first_id: int
) -> list[dict[str, Any]]:
    """The four items of one filled template: {ambig, disambig} x {neg, nonneg}, sharing one answer order."""
    lexical = len(row.get("Lexical_diversity", "")) > 1
    text = {field: slot(row.get(field, ""), pair, lexical) for field in _TEXT_FIELDS}
    negative, non_negative = text["Answer_negative"], text["Answer_non_negative"]
    unknown = rng.choice(UNKNOWN_RESPONSES)
    answers = [negative, non_negative, unknown]
    rng.shuffle(answers)
    info = answer_info(pair, answers, negative, non_negative, unknown)
    ambiguous = text["Ambiguous_Context"]
    disambiguated = f"{ambiguous.strip()} {text['Disambiguating_Context']}"
    metadata = {
        "subcategory": row.get("Subcategory") or "None",
        "stereotyped_groups": pair.stereotyped,
        "version": row["version"] if "version" in row else "None",
        "source": row.get("Notes", ""),
    }
    cells = [
        ("neg", "ambig", ambiguous, text["Question_negative_stereotype"], unknown),
        ("neg", "disambig", disambiguated, text["Question_negative_stereotype"], negative),
        ("nonneg", "ambig", ambiguous, text["Question_non_negative"], unknown),
        ("nonneg", "disambig", disambiguated, text["Question_non_negative"], non_negative),
    ]
    return [
        {
            "example_id": first_id + offset,
            "question_index": row.get("Q_id", ""),
            "question_polarity": polarity,
            "context_condition": condition,
            "category": category,
            "answer_info": info,
            "additional_metadata": metadata,
            "context": context.strip(),
            "question": question.strip(),
            "ans0": answers[0],
            "ans1": answers[1],
            "ans2": answers[2],
            "label": answers.index(correct),
        }
        for offset, (polarity, condition, context, question, correct) in enumerate(cells)
    ]
