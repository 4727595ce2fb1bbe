"""GSM8K-like arithmetic word problems, generated from templates with computed answers (deterministic by seed).

Each problem needs one to three integer operations on small numbers; the reference answer shows the working and
ends with "The answer is N." so that exact match on the final number (``audit/utility.py``) can score it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

NAMES = ("Ava", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kofi", "Lena", "Mei",
         "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wen", "Yara", "Zane")
ITEMS = ("apples", "pencils", "stickers", "marbles", "cookies", "books", "shells", "stamps", "cards", "oranges",
         "balloons", "candles", "buttons", "crayons", "muffins", "tickets")


@dataclass(frozen=True)
class Problem:
    question: str
    working: str
    answer: int

    @property
    def response(self) -> str:
        return f"{self.working}\nThe answer is {self.answer}."


def _add(r: random.Random, name: str, item: str) -> Problem:
    a, b = r.randint(3, 60), r.randint(2, 40)
    return Problem(f"{name} has {a} {item}. {name} gets {b} more {item}. How many {item} does {name} have now?",
                   f"{name} starts with {a} and gets {b} more, so {a} + {b} = {a + b}.", a + b)


def _subtract(r: random.Random, name: str, item: str) -> Problem:
    b = r.randint(2, 40)
    a = b + r.randint(1, 50)
    return Problem(f"{name} had {a} {item} and gave {b} of them to a friend. How many {item} does {name} have left?",
                   f"{name} had {a} and gave away {b}, so {a} - {b} = {a - b}.", a - b)


def _multiply(r: random.Random, name: str, item: str) -> Problem:
    a, b = r.randint(2, 12), r.randint(2, 12)
    return Problem(f"A box holds {a} {item}. {name} has {b} full boxes. How many {item} does {name} have?",
                   f"Each box holds {a} and there are {b} boxes, so {a} x {b} = {a * b}.", a * b)


def _divide(r: random.Random, name: str, item: str) -> Problem:
    each, friends = r.randint(2, 12), r.randint(2, 9)
    total = each * friends
    return Problem(f"{name} shares {total} {item} equally among {friends} friends. "
                   f"How many {item} does each friend get?",
                   f"{total} {item} shared by {friends} friends is {total} / {friends} = {each}.", each)


def _packs_minus(r: random.Random, name: str, item: str) -> Problem:
    packs, per, used = r.randint(2, 9), r.randint(2, 10), 0
    used = r.randint(1, packs * per - 1)
    total = packs * per
    return Problem(
        f"{name} buys {packs} packs of {item} with {per} {item} in each pack, then uses {used} of them. "
        f"How many {item} are left?",
        f"{name} buys {packs} x {per} = {total} {item}. "
        f"After using {used}, {total} - {used} = {total - used} are left.",
        total - used)


def _wages(r: random.Random, name: str, item: str) -> Problem:
    rate, hours, days = r.randint(5, 20), r.randint(2, 8), r.randint(2, 6)
    per_day = rate * hours
    return Problem(
        f"{name} earns ${rate} per hour and works {hours} hours a day for {days} days. "
        f"How many dollars does {name} earn?",
        f"Each day {name} earns {rate} x {hours} = {per_day} dollars. Over {days} days that is {per_day} x {days} = "
        f"{per_day * days} dollars.", per_day * days)


def _two_sales(r: random.Random, name: str, item: str) -> Problem:
    morning, afternoon = r.randint(2, 30), r.randint(2, 30)
    stock = morning + afternoon + r.randint(1, 40)
    left = stock - morning - afternoon
    return Problem(
        f"A shop had {stock} {item}. It sold {morning} in the morning and {afternoon} in the afternoon. "
        f"How many {item} does the shop have left?",
        f"The shop sold {morning} + {afternoon} = {morning + afternoon} {item}, so {stock} - {morning + afternoon} = "
        f"{left} are left.", left)


def _pocket_money(r: random.Random, name: str, item: str) -> Problem:
    weekly, weeks, price = r.randint(3, 15), r.randint(2, 8), r.randint(2, 20)
    saved = weekly * weeks
    price = min(price, saved)
    return Problem(
        f"{name} saves ${weekly} every week for {weeks} weeks and then spends ${price} on {item}. "
        f"How many dollars does {name} have left?",
        f"{name} saves {weekly} x {weeks} = {saved} dollars, "
        f"then {saved} - {price} = {saved - price} dollars are left.",
        saved - price)


TEMPLATES: tuple[Callable[[random.Random, str, str], Problem], ...] = (
    _add, _subtract, _multiply, _divide, _packs_minus, _wages, _two_sales, _pocket_money,
)


def problems(n: int, seed: int = 0) -> list[Problem]:
    """``n`` distinct problems; the same seed always gives the same list."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[Problem] = []
    while len(out) < n:
        problem = rng.choice(TEMPLATES)(rng, rng.choice(NAMES), rng.choice(ITEMS))
        if problem.question not in seen:
            seen.add(problem.question)
            out.append(problem)
    return out


def held_out(n: int, seed: int, exclude: list[Problem]) -> list[Problem]:
    """``n`` problems from another seed that share no question with ``exclude`` (e.g. the training set)."""
    taken = {p.question for p in exclude}
    pool = [p for p in problems(n + len(exclude), seed) if p.question not in taken]
    return pool[:n]
