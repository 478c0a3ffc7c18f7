"""Premise/hypothesis generators for the bundled NLI sample, one per linguistic phenomenon.

Each generator takes a seeded :class:`random.Random` and the wanted label and returns ``(premise, hypothesis)``. The
label is correct by construction: every branch builds the pair from a rule that fixes it (a negated clause
contradicts its positive form, ``All`` entails ``Some``, a hyponym entails its hypernym, and so on).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ._math_generators import NAMES

ENTAILMENT, NEUTRAL, CONTRADICTION = "entailment", "neutral", "contradiction"
LABELS = (ENTAILMENT, NEUTRAL, CONTRADICTION)


def _article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


# (base form, past form) of events a person can do or not do.
_EVENTS = [
    ("lock the door", "locked the door"), ("feed the cat", "fed the cat"), ("call the bank", "called the bank"),
    ("water the plants", "watered the plants"), ("finish the report", "finished the report"),
    ("pay the rent", "paid the rent"), ("buy milk", "bought milk"), ("visit the museum", "visited the museum"),
    ("read the letter", "read the letter"), ("answer the email", "answered the email"),
    ("wash the car", "washed the car"), ("take the bus", "took the bus"), ("bake a cake", "baked a cake"),
    ("fix the bike", "fixed the bike"), ("attend the meeting", "attended the meeting"),
    ("sign the form", "signed the form"),
]  # fmt: skip


def negation(rng: random.Random, label: str) -> tuple[str, str]:
    name = rng.choice(NAMES)
    (base_a, past_a), (base_b, past_b) = rng.sample(_EVENTS, 2)
    if label == CONTRADICTION:
        if rng.random() < 0.5:
            return f"{name} {past_a}.", f"{name} did not {base_a}."
        return f"{name} did not {base_a}.", f"{name} {past_a}."
    if label == ENTAILMENT:
        if rng.random() < 0.5:
            return f"{name} did not {base_a} and did not {base_b}.", f"{name} did not {base_a}."
        return f"{name} {past_a} but did not {base_b}.", f"{name} did not {base_b}."
    if rng.random() < 0.5:
        return f"{name} did not {base_a}.", f"{name} {past_b}."
    return f"{name} {past_a}.", f"{name} did not {base_b}."


_GROUPS = ["students", "players", "guests", "workers", "passengers", "members", "runners", "nurses", "children"]
_GROUP_PREDICATES = [
    ("passed the exam", "pass the exam"), ("arrived on time", "arrive on time"), ("wore a hat", "wear a hat"),
    ("voted for the plan", "vote for the plan"), ("brought an umbrella", "bring an umbrella"),
    ("signed the petition", "sign the petition"), ("finished the race", "finish the race"),
    ("ate the soup", "eat the soup"), ("stayed until midnight", "stay until midnight"),
]  # fmt: skip


def quantifiers(rng: random.Random, label: str) -> tuple[str, str]:
    group = rng.choice(_GROUPS)
    past, base = rng.choice(_GROUP_PREDICATES)
    count = rng.randint(3, 40)
    if label == ENTAILMENT:
        return rng.choice(
            [
                (f"All {count} of the {group} {past}.", f"Some of the {group} {past}."),
                (f"None of the {count} {group} {past}.", f"Not all of the {group} {past}."),
                (f"Every one of the {count} {group} {past}.", f"At least one of the {group} {past}."),
            ]
        )
    if label == NEUTRAL:
        return rng.choice(
            [
                (f"Some of the {count} {group} {past}.", f"All of the {group} {past}."),
                (f"Most of the {count} {group} {past}.", f"Every one of the {group} {past}."),
                (f"Not all of the {count} {group} {past}.", f"None of the {group} {past}."),
            ]
        )
    return rng.choice(
        [
            (f"None of the {count} {group} {past}.", f"Some of the {group} {past}."),
            (f"All {count} of the {group} {past}.", f"At least one of the {group} did not {base}."),
            (
                f"Every one of the {count} {group} {past}.",
                f"No {group[:-1] if group != 'children' else 'child'} {past}.",
            ),
        ]
    )


_HYPONYMS = [
    ("rose", "flower"), ("tulip", "flower"), ("oak", "tree"), ("pine", "tree"), ("violin", "musical instrument"),
    ("trumpet", "musical instrument"), ("hammer", "tool"), ("wrench", "tool"), ("salmon", "fish"), ("trout", "fish"),
    ("apple", "fruit"), ("mango", "fruit"), ("carrot", "vegetable"), ("onion", "vegetable"), ("sparrow", "bird"),
    ("eagle", "bird"), ("novel", "book"), ("sedan", "car"), ("dolphin", "animal"), ("spider", "animal"),
    ("sweater", "piece of clothing"), ("bracelet", "piece of jewelry"), ("sofa", "piece of furniture"),
]  # fmt: skip
_SEE_VERBS = [("saw", "see"), ("bought", "buy"), ("drew", "draw"), ("photographed", "photograph"), ("found", "find")]


def hypernyms(rng: random.Random, label: str) -> tuple[str, str]:
    name = rng.choice(NAMES)
    specific, general = rng.choice(_HYPONYMS)
    past, base = rng.choice(_SEE_VERBS)
    if label == ENTAILMENT:
        return f"{name} {past} {_article(specific)}.", f"{name} {past} {_article(general)}."
    if label == NEUTRAL:
        return f"{name} {past} {_article(general)}.", f"{name} {past} {_article(specific)}."
    return f"{name} {past} {_article(specific)} yesterday.", f"{name} did not {base} any {general} yesterday."


# (noun, adjective, its antonym, an unrelated adjective)
_ANTONYMS = [
    ("soup", "hot", "cold", "salty"), ("door", "open", "closed", "wooden"), ("glass", "full", "empty", "tall"),
    ("road", "wet", "dry", "narrow"), ("room", "bright", "dark", "large"), ("street", "noisy", "quiet", "long"),
    ("box", "heavy", "light", "red"), ("bread", "fresh", "stale", "sliced"), ("lake", "deep", "shallow", "cold"),
    ("test", "easy", "difficult", "long"), ("shirt", "clean", "dirty", "blue"), ("knife", "sharp", "blunt", "old"),
    ("rope", "long", "short", "thick"), ("coffee", "hot", "cold", "sweet"), ("answer", "correct", "wrong", "short"),
    ("train", "early", "late", "crowded"), ("window", "open", "closed", "dusty"), ("bag", "heavy", "light", "black"),
]  # fmt: skip


def antonyms(rng: random.Random, label: str) -> tuple[str, str]:
    noun, adjective, antonym, unrelated = rng.choice(_ANTONYMS)
    if rng.random() < 0.5:
        adjective, antonym = antonym, adjective
    owner = rng.choice(["The", f"{rng.choice(NAMES)}'s"])
    subject = f"{owner} {noun}"
    premise = f"{subject} was {adjective}."
    if label == ENTAILMENT:
        return premise, f"{subject} was not {antonym}."
    if label == CONTRADICTION:
        return premise, f"{subject} was {antonym}."
    return premise, f"{subject} was {unrelated}."


_COUNTABLES = ["apples", "books", "coins", "stamps", "shells", "pencils", "marbles", "postcards", "keys", "plants"]


def numeric_comparison(rng: random.Random, label: str) -> tuple[str, str]:
    name = rng.choice(NAMES)
    things = rng.choice(_COUNTABLES)
    count = rng.randint(3, 90)
    premise = f"{name} has exactly {count} {things}."
    if label == ENTAILMENT:
        kind = rng.choice(["more", "fewer", "at least"])
        if kind == "more":
            return premise, f"{name} has more than {rng.randint(1, count - 1)} {things}."
        if kind == "fewer":
            return premise, f"{name} has fewer than {rng.randint(count + 1, count + 30)} {things}."
        return premise, f"{name} has at least {rng.randint(1, count)} {things}."
    if label == CONTRADICTION:
        if rng.random() < 0.5:
            return premise, f"{name} has more than {rng.randint(count, count + 30)} {things}."
        return premise, f"{name} has fewer than {rng.randint(1, count)} {things}."
    if rng.random() < 0.5:
        return (
            f"{name} has more than {count} {things}.",
            f"{name} has more than {count + rng.randint(1, 30)} {things}.",
        )
    return f"{name} has fewer than {count} {things}.", f"{name} has fewer than {rng.randint(2, count - 1)} {things}."


# (past form, gerund) of everyday events.
_DAY_EVENTS = [
    ("ate breakfast", "eating breakfast"), ("went to work", "going to work"), ("took a shower", "taking a shower"),
    ("walked the dog", "walking the dog"), ("read the news", "reading the news"), ("made coffee", "making coffee"),
    ("called a friend", "calling a friend"), ("did the dishes", "doing the dishes"),
    ("went shopping", "going shopping"), ("cooked dinner", "cooking dinner"), ("watched a film", "watching a film"),
    ("wrote a letter", "writing a letter"),
]  # fmt: skip


def temporal_order(rng: random.Random, label: str) -> tuple[str, str]:
    name = rng.choice(NAMES)
    (past_a, ger_a), (past_b, ger_b), (past_c, ger_c) = rng.sample(_DAY_EVENTS, 3)
    if rng.random() < 0.5:
        premise = f"{name} {past_a} before {ger_b}."
        if label == ENTAILMENT:
            return premise, f"{name} {past_b} after {ger_a}."
        if label == CONTRADICTION:
            return premise, f"{name} {past_b} before {ger_a}."
        return premise, f"{name} {past_a} before {ger_c}."
    hour = rng.randint(6, 20)
    clock = f"{hour}:00"
    premise = f"{name} {past_a} at {clock} and {past_b} an hour later."
    if label == ENTAILMENT:
        return premise, f"{name} {past_b} at {hour + 1}:00."
    if label == CONTRADICTION:
        return premise, f"{name} {past_b} before {ger_a}."
    return premise, f"{name} {past_c} at {hour + 2}:00."


# (rule, antecedent, consequent, negated antecedent, negated consequent); ``{n}`` is a name.
_RULES = [
    ("If it rains, the match is cancelled.", "It rained.", "The match was cancelled.", "It did not rain.",
     "The match was not cancelled."),
    ("If {n} finishes the report, {n} goes home early.", "{n} finished the report.", "{n} went home early.",
     "{n} did not finish the report.", "{n} did not go home early."),
    ("If the alarm rings, {n} wakes up.", "The alarm rang.", "{n} woke up.", "The alarm did not ring.",
     "{n} did not wake up."),
    ("If the shop is open, {n} buys bread.", "The shop was open.", "{n} bought bread.", "The shop was not open.",
     "{n} did not buy bread."),
    ("If {n} wins the game, {n} gets a medal.", "{n} won the game.", "{n} got a medal.", "{n} did not win the game.",
     "{n} did not get a medal."),
    ("If the river floods, the bridge is closed.", "The river flooded.", "The bridge was closed.",
     "The river did not flood.", "The bridge was not closed."),
    ("If {n} misses the bus, {n} walks to school.", "{n} missed the bus.", "{n} walked to school.",
     "{n} did not miss the bus.", "{n} did not walk to school."),
    ("If the power goes out, the lights turn off.", "The power went out.", "The lights turned off.",
     "The power did not go out.", "The lights did not turn off."),
]  # fmt: skip


def conditionals(rng: random.Random, label: str) -> tuple[str, str]:
    name = rng.choice(NAMES)
    rule, ante, cons, not_ante, not_cons = (part.replace("{n}", name) for part in rng.choice(_RULES))
    if label == ENTAILMENT:
        if rng.random() < 0.5:
            return f"{rule} {ante}", cons
        return f"{rule} {not_cons}", not_ante
    if label == NEUTRAL:
        if rng.random() < 0.5:
            return f"{rule} {cons}", ante
        return f"{rule} {not_ante}", not_cons
    return f"{rule} {ante}", not_cons


# (comparative, its converse)
_COMPARATIVES = [("taller", "shorter"), ("older", "younger"), ("faster", "slower"), ("heavier", "lighter"),
                 ("richer", "poorer"), ("stronger", "weaker")]  # fmt: skip


def comparatives(rng: random.Random, label: str) -> tuple[str, str]:
    first, second, third = rng.sample(NAMES, 3)
    comparative, converse = rng.choice(_COMPARATIVES)
    if rng.random() < 0.5:
        comparative, converse = converse, comparative
    chain = f"{first} is {comparative} than {second}, and {second} is {comparative} than {third}."
    if label == ENTAILMENT:
        return rng.choice(
            [
                (chain, f"{first} is {comparative} than {third}."),
                (f"{first} is {comparative} than {second}.", f"{second} is {converse} than {first}."),
            ]
        )
    if label == CONTRADICTION:
        return rng.choice(
            [
                (chain, f"{third} is {comparative} than {first}."),
                (f"{first} is {comparative} than {second}.", f"{first} is {converse} than {second}."),
            ]
        )
    return f"{first} is {comparative} than {second}, and {first} is {comparative} than {third}.", (
        f"{second} is {comparative} than {third}."
    )


PHENOMENA: dict[str, Callable[[random.Random, str], tuple[str, str]]] = {
    "antonyms": antonyms,
    "comparatives": comparatives,
    "conditionals": conditionals,
    "hypernyms": hypernyms,
    "negation": negation,
    "numeric_comparison": numeric_comparison,
    "quantifiers": quantifiers,
    "temporal_order": temporal_order,
}
