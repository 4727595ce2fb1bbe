"""Rebuild BBQ items from BBQ's own template and vocabulary CSVs (``new_templates - <Category>.csv``).

The original generator (nyu-mll/BBQ ``generate_from_template_all_categories.py``) fills each template row with pairs
of group words and writes four items per pair (ambiguous/disambiguated x negative/non-negative question). It draws
at random, unseeded, in five places: which vocabulary words (down-sampled to 5 or 6), which lexical-diversity word
fills ``{{WORD1}}``/``{{WORD2}}``, which last names go with proper first names, which of ten wordings the 'unknown'
answer gets, and the order of the three answers. So its output cannot be regenerated bit for bit; this expander
follows the same procedure with a seeded ``random.Random``:

* ``mode="bbq"``: the generator's own down-sampling, so the item counts are those of the released files;
* ``mode="all"``: every vocabulary pair and every lexical-diversity combination (proper names stay sampled: BBQ never
  pairs all names). The released items are a subset of this, which is how `reproduction()` checks the expander.

Slot filling repeats the generator's own textual fixes ('a' -> 'an' before vowels, 'lesbian man', 'Latino woman'),
and the answer group tags are derived as it derives them, so bias scoring treats rebuilt and released items alike.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from safepeft.audit.fairness.fill import Pair, fill_row
from safepeft.audit.fairness.items import DIMENSIONS
from safepeft.errors import DataError

# Categories whose template rows pair stereotyped targets with explicitly non-targeted vocabulary words, in both
# orders (the generator's `need_stereotyping_subset`).
_TARGETED = ("Race_ethnicity", "Religion", "Nationality", "Sexual_orientation")


@dataclass(frozen=True)
class Vocabulary:
    """vocabulary.csv (rows marked Pilot_include=No dropped) and vocabulary_proper_names.csv."""

    words: list[dict[str, str]]
    names: list[dict[str, str]]

    def category(self, category: str, subcategory: str = "") -> list[dict[str, str]]:
        return [w for w in self.words if w["Category"] == category and (not subcategory or w["SubCat"] == subcategory)]

    def info(self, word: str) -> str:
        return next((w["Info"] for w in self.words if w["Name"] == word), "")

    def first_names(self, kind: str) -> list[dict[str, str]]:
        return [n for n in self.names if n["First_last"] == kind]


def read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return [{k: (v or "") for k, v in row.items() if k is not None} for row in csv.DictReader(handle)]
    except FileNotFoundError as exc:
        raise DataError(f"No BBQ template file at {path}.", "Point to the nyu-mll/BBQ `templates/` folder.") from exc


def load_vocabulary(directory: Path) -> Vocabulary:
    words = [w for w in read_csv(directory / "vocabulary.csv") if w.get("Pilot_include") != "No"]
    return Vocabulary(words=words, names=read_csv(directory / "vocabulary_proper_names.csv"))


def template_categories(directory: str | Path) -> list[str]:
    """The base categories (of the 9) that have a template file in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"BBQ templates folder {directory} does not exist.", "Pass the nyu-mll/BBQ `templates/` dir.")
    return [c for c in DIMENSIONS if (directory / f"new_templates - {c}.csv").is_file()]


def expand_templates(
    directory: str | Path,
    categories: list[str] | None = None,
    *,
    seed: int = 0,
    mode: Literal["bbq", "all"] = "bbq",
) -> Iterator[dict[str, Any]]:
    """Yield BBQ jsonl records (same schema as the released files) rebuilt from the templates."""
    directory = Path(directory)
    vocab = load_vocabulary(directory)
    for category in categories or template_categories(directory):
        rng = random.Random(f"{seed}:{category}")
        rows = [r for r in read_csv(directory / f"new_templates - {category}.csv") if r.get("Ambiguous_Context")]
        example_id = 0
        for row in rows:
            for pair in _pairs(row, category, vocab, rng, mode):
                for record in fill_row(row, category, pair, rng, example_id):
                    yield record
                    example_id += 1


def _stereotyped(row: dict[str, str]) -> list[str]:
    text = row.get("Known_stereotyped_groups", "")
    try:
        groups = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        raise DataError(f"Known_stereotyped_groups {text!r} of template {row.get('Q_id')} is not a list.") from exc
    return [str(g) for g in groups]


def _word_lists(text: str) -> tuple[list[str], list[str]]:
    """'NAME1: [a, b]; NAME2: [c]' (or WORD1/WORD2, braces optional) -> (['a', 'b'], ['c'])."""
    first: list[str] = []
    second: list[str] = []
    for part in text.split(";"):
        label, _, values = part.partition(":")
        words = [w.strip() for w in values.strip().strip("[]").split(",") if w.strip()]
        if "1" in label:
            first = words
        elif "2" in label:
            second = words
    return first, second


def _sample(rng: random.Random, words: list[Any], k: int, mode: str) -> list[Any]:
    return list(words) if mode == "all" or len(words) <= k else rng.sample(words, k)


def _pairs(row: dict[str, str], category: str, vocab: Vocabulary, rng: random.Random, mode: str) -> Iterator[Pair]:
    """The (NAME1, NAME2, infos, lexical words) fillings of one template row, as the BBQ generator chooses them."""
    stereotyped = _stereotyped(row)
    pool = list(dict.fromkeys(w["Name"] for w in vocab.category(category)))
    words = vocab.category(category)
    targeted = category in _TARGETED and bool(stereotyped)
    first = [w for w in pool if w in stereotyped] if category in _TARGETED else pool
    first = _sample(rng, first, 5, mode) if len(first) > 4 else ([] if len(pool) < 2 else first)
    subcategory = row.get("Subcategory", "")
    if subcategory:
        words = vocab.category(category, subcategory)
        first = _sample(rng, list(dict.fromkeys(w["Name"] for w in words)), 5, mode)
    named = len(row.get("Names", "")) > 1
    if named:
        first, fixed_second = _word_lists(row["Names"])
    proper = row.get("Proper_nouns_only") == "TRUE"
    if proper:
        yield from _proper_pairs(row, category, vocab, stereotyped, rng, mode)
        return
    flip = category in _TARGETED or (category == "SES" and subcategory == "Occupation")
    for word1 in first:
        if named:
            second = fixed_second
        elif targeted:
            second = _sample(rng, [w for w in pool if w not in stereotyped], 5, mode)
        else:
            second = [w for w in first if w != word1]
        if category == "SES" and not named:
            own = next(w["Info"] for w in words if w["Name"] == word1)
            second = list(dict.fromkeys(w["Name"] for w in words if w["Info"] != own))
        for word2 in second:
            info1, info2 = _infos(row, category, subcategory, vocab, word1, word2)
            for lexical in _lexical(row, rng, mode):
                yield Pair(word1, word2, info1, info2, *lexical, stereotyped)
                if flip:
                    yield Pair(word2, word1, info2, info1, *lexical, stereotyped)


def _infos(
    row: dict[str, str], category: str, subcategory: str, vocab: Vocabulary, w1: str, w2: str
) -> tuple[str, str]:
    if category == "Nationality" or (category == "SES" and subcategory == "Occupation"):
        return vocab.info(w1), vocab.info(w2)
    if row.get("NAME1_info"):
        return row["NAME1_info"], row.get("NAME2_info", "")
    return w1, w2


def _lexical(row: dict[str, str], rng: random.Random, mode: str) -> Iterator[tuple[str, str]]:
    """WORD1/WORD2 fillers. A one-word WORD2 list fills with '' in the original generator; kept for fidelity."""
    text = row.get("Lexical_diversity", "")
    if len(text) <= 1:
        yield "", ""
        return
    words1, words2 = _word_lists(text)
    words2 = words2 if len(words2) > 1 else [""]
    if mode == "all":
        yield from ((a, b) for a in words1 for b in words2)
    else:
        yield rng.choice(words1), rng.choice(words2)


def _proper_pairs(
    row: dict[str, str], category: str, vocab: Vocabulary, stereotyped: list[str], rng: random.Random, mode: str
) -> Iterator[Pair]:
    """Templates over first names: names carry gender (and ethnicity for Race_ethnicity), always both orders."""
    if category == "Race_ethnicity":
        yield from _race_name_pairs(row, vocab, stereotyped, rng, mode)
        return
    only = vocab.first_names("first_only")
    gender = {n["Name"]: n["gender"] for n in only}
    if category == "Gender_identity":
        first = rng.sample([n["Name"] for n in only if n["gender"] == "F"], 5)
    else:
        first = rng.sample([n["Name"] for n in only], 6)
    for word1 in first:
        if category == "Gender_identity":
            second = rng.sample([n["Name"] for n in only if n["gender"] != gender[word1]], 5)
        else:
            second = [w for w in first if w != word1]
        for word2 in second:
            if category == "Gender_identity":
                info1, info2 = gender[word1], gender.get(word2, word2)
                if row.get("NAME1_info"):
                    info1, info2 = f"{row['NAME1_info']}_{info1}", f"{row.get('NAME2_info', '')}_{info2}"
            else:
                info1, info2 = _infos(row, category, row.get("Subcategory", ""), vocab, word1, word2)
            for lexical in _lexical(row, rng, mode):
                yield Pair(word1, word2, info1, info2, *lexical, stereotyped)
                yield Pair(word2, word1, info2, info1, *lexical, stereotyped)


def _race_name_pairs(
    row: dict[str, str], vocab: Vocabulary, stereotyped: list[str], rng: random.Random, mode: str
) -> Iterator[Pair]:
    """Full names: a first name of a stereotyped ethnicity vs one of the same gender and another ethnicity."""
    firsts = vocab.first_names("first")
    lasts = vocab.first_names("last")
    pool = [n for n in firsts if n["ethnicity"] in stereotyped] if stereotyped else firsts
    for one in rng.sample(pool, 5):
        name1 = f"{one['Name']} {rng.choice([n['Name'] for n in lasts if n['ethnicity'] == one['ethnicity']])}"
        others = [n for n in firsts if n["ethnicity"] not in stereotyped and n["gender"] == one["gender"]]
        for two in rng.sample(others, 5):
            last = rng.choice([n["Name"] for n in lasts if n["ethnicity"] == two["ethnicity"]])
            name2 = f"{two['Name']} {last}"
            info1, info2 = f"{one['gender']}-{one['ethnicity']}", f"{two['gender']}-{two['ethnicity']}"
            for lexical in _lexical(row, rng, mode):
                yield Pair(name1, name2, info1, info2, *lexical, stereotyped)
                yield Pair(name2, name1, info2, info1, *lexical, stereotyped)
