"""Words without a text encoder: the garment types and colours a gallery's attribute models know, with their plural
forms and common synonyms, as data; a description is parsed into {task: class} or a clear error listing the words.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

# class -> words that name it (lower case; a phrase may have several words). A class the gallery's attribute model
# does not know is left out of its vocabulary; a word not here is an unknown word.
WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "type": {
        "dress": ("dress", "dresses", "gown", "gowns", "frock", "frocks", "sundress", "sundresses"),
        "pants": ("pants", "trousers", "jeans", "slacks", "chinos", "leggings", "joggers", "sweatpants"),
        "shirt": ("shirt", "shirts", "blouse", "blouses", "button-down", "button-downs"),
        "shoes": ("shoes", "shoe", "sneakers", "sneaker", "boots", "boot", "trainers", "trainer", "sandals", "sandal",
                  "heels", "loafers", "footwear"),
        "shorts": ("shorts", "bermudas"),
        "hat": ("hat", "hats", "cap", "caps", "beanie", "beanies"),
        "longsleeve": ("longsleeve", "longsleeves", "long-sleeve", "long sleeve", "long-sleeved", "long sleeved",
                       "sweater", "sweaters", "jumper", "jumpers", "sweatshirt", "sweatshirts", "pullover"),
        "outwear": ("outwear", "outerwear", "jacket", "jackets", "coat", "coats", "parka", "parkas", "anorak"),
        "skirt": ("skirt", "skirts", "miniskirt", "miniskirts"),
        "tshirt": ("tshirt", "tshirts", "t-shirt", "t-shirts", "t shirt", "t shirts", "tee", "tees"),
    },
    "colour": {
        "black": ("black", "jet", "ebony"),
        "blue": ("blue", "navy", "denim", "azure", "cobalt", "indigo", "turquoise", "teal"),
        "brown": ("brown", "tan", "beige", "camel", "khaki", "chocolate", "caramel"),
        "green": ("green", "olive", "lime", "emerald", "mint"),
        "red": ("red", "crimson", "scarlet", "maroon", "burgundy"),
        "white": ("white", "ivory", "cream", "snow"),
    },
}
# words a description may hold that name neither a type nor a colour
FILLER = frozenset("a an the in on of with and some pair pairs for my me i want show find looking light dark".split())
# how a class reads in a sentence ("not a longsleeve?" reads badly), and those read without "a" (plural or mass)
DISPLAY = {"longsleeve": "long-sleeve top", "tshirt": "T-shirt", "outwear": "outerwear", "pants": "trousers"}
NO_ARTICLE = frozenset({"pants", "shoes", "shorts", "outwear"})


class UnknownWords(ValueError):
    """A description with words the vocabulary lacks; the message lists what it knows."""


def display(value: str) -> str:
    """A class as a person reads it: "longsleeve" -> "long-sleeve top"."""
    return DISPLAY.get(value, value)


def phrase(value: str) -> str:
    """A class with its article: "a dress", "a T-shirt", "shoes", "outerwear"."""
    name = display(value)
    return name if value in NO_ARTICLE else f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def vocabulary(known: Mapping[str, Sequence[str]]) -> dict[str, dict[str, tuple[str, ...]]]:
    """{task: {class: words}} for the classes the models know (`known`: {task: classes}); a class missing from WORDS
    is named by itself."""
    return {task: {c: WORDS.get(task, {}).get(c, (c.lower(),)) for c in classes} for task, classes in known.items()}


def parse(text: str, known: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """{task: class} named by `text`, e.g. "black sneakers" -> {"type": "shoes", "colour": "black"}.

    Raises UnknownWords (listing the vocabulary) for a word it does not know, for no type or colour at all, and for
    two different types or colours."""
    vocab = vocabulary(known)
    phrases = sorted(((w, task, c) for task, classes in vocab.items() for c, words in classes.items() for w in words),
                     key=lambda p: -len(p[0]))
    rest = " " + re.sub(r"[^\w\s-]", " ", str(text).lower()) + " "
    found: dict[str, set[str]] = {}
    for phrase, task, c in phrases:  # longest first: "long sleeve" before "sleeve"
        pattern = re.compile(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])")
        if pattern.search(rest):
            found.setdefault(task, set()).add(c)
            rest = pattern.sub(" ", rest)
    unknown = [w for w in rest.split() if w not in FILLER]
    if unknown or not found:
        what = f"it does not know {', '.join(map(repr, unknown))}" if unknown else "it names no type or colour"
        raise UnknownWords(f"This gallery has no text encoder, so words search by the garment types and colours its "
                           f"models know, and {what}. {describe(vocab)}")
    several = {task: sorted(cs) for task, cs in found.items() if len(cs) > 1}
    if several:
        task, cs = next(iter(several.items()))
        raise UnknownWords(f"Give one {task}, not {' and '.join(cs)}.")
    return {task: next(iter(cs)) for task, cs in found.items()}


def describe(vocab: Mapping[str, Mapping[str, Sequence[str]]]) -> str:
    """The vocabulary in a sentence: "Types: dress (dresses, gown, ...); ... Colours: ..."."""
    parts = []
    for task, classes in vocab.items():
        items = [f"{c} ({', '.join(w for w in words[:4] if w != c)})" if len(words) > 1 else c
                 for c, words in classes.items()]
        parts.append(f"{'Types' if task == 'type' else 'Colours'}: {'; '.join(items)}.")
    return "It knows: " + " ".join(parts)
