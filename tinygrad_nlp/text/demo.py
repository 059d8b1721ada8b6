"""A built-in, generated demo corpus whose words fall into clear semantic groups.

Sentences are filled in from templates with a fixed seed, so the text is the same on every
machine and nothing is downloaded. Each group (``DEMO_GROUPS``) has its own templates --
days follow "on" / "every" / "next", instruments follow "plays the", numbers come before
"kilos of" / "years old" / "o'clock", and so on -- while the filler of every slot is drawn
uniformly from its group. Words of one group therefore share their context words and words of
different groups do not, which is exactly the signal CBoW / skip-gram pick up: after a short
training run, the nearest neighbours of "monday" should be other days, those of "paris" other
capitals, those of "violin" other instruments.

Groups (14, 140 words; see ``DEMO_GROUPS``): days, months, numbers, colours, animals,
fruits, family, countries, capitals, motion (verbs of motion, past tense), professions,
instruments, places, weather. Countries and capitals are paired by index ("paris is the capital
of france"), so the text also carries a capital-of relation.

Size: ``DEMO_SENTENCES`` = 20,000 sentences, 140,156 tokens (counting the ``'.'`` tokens),
256 distinct words (the 140 group words, possessives, articles and template words); about
680 KB of text, generated in about 0.1 s and cached. Every group word occurs 120-510 times.
"""

from __future__ import annotations

import functools
import random

from tinygrad_nlp.text.preprocessing import preprocess

__all__ = ["DEMO_GROUPS", "DEMO_SEED", "DEMO_SENTENCES", "demo_text", "load_demo", "demo_group_of"]

DEMO_SEED = 20240521
DEMO_SENTENCES = 20_000

#: Semantic groups of the demo corpus: group name -> words. Every word occurs only in slots of
#: its own group (never as a fixed template word), so these are the ground-truth clusters.
DEMO_GROUPS = {
    "days": ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    "months": ("january", "february", "march", "april", "may", "june", "july", "august",
               "september", "october", "november", "december"),
    "numbers": ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"),
    "colours": ("red", "blue", "green", "yellow", "black", "white", "purple", "brown", "pink", "grey"),
    "animals": ("dog", "cat", "horse", "cow", "sheep", "pig", "goat", "rabbit", "fox", "duck"),
    "fruits": ("apple", "banana", "pear", "cherry", "grape", "lemon", "mango", "peach", "plum", "melon"),
    "family": ("mother", "father", "sister", "brother", "aunt", "uncle", "grandmother", "grandfather",
               "cousin", "daughter", "son"),
    "countries": ("france", "germany", "italy", "spain", "japan", "china", "egypt", "russia", "greece",
                  "peru", "kenya", "canada"),
    "capitals": ("paris", "berlin", "rome", "madrid", "tokyo", "beijing", "cairo", "moscow", "athens",
                 "lima", "nairobi", "ottawa"),
    "motion": ("walked", "ran", "drove", "flew", "swam", "cycled", "rode", "sailed", "hurried", "jogged"),
    "professions": ("teacher", "doctor", "farmer", "pilot", "nurse", "baker", "lawyer", "painter",
                    "singer", "engineer"),
    "instruments": ("piano", "guitar", "violin", "drum", "flute", "trumpet", "cello", "harp"),
    "places": ("market", "park", "river", "station", "school", "library", "beach", "garden", "museum",
               "harbour"),
    "weather": ("sunny", "rainy", "cloudy", "windy", "snowy", "foggy", "stormy"),
}

# Function words that fill "{poss}" slots; not a group that is evaluated.
_POSS = ("my", "her", "his", "our", "their")

# Templates: "{group}" is a word drawn from that group; "{countries=}" / "{capitals=}" in one
# sentence are drawn with the same index, i.e. a country and its own capital; "{a}" is the
# article "a" or "an", whichever suits the next word.
_TEMPLATES = (
    # days
    "on {days} {poss} {family} {motion} to the {places} .",
    "we meet every {days} morning .",
    "see you next {days} at the {places} .",
    "the {places} is closed on {days} .",
    "last {days} it was {weather} .",
    "{poss} {family} practises the {instruments} every {days} .",
    # months
    "{poss} {family} was born in {months} .",
    "the festival starts in early {months} .",
    "{months} is usually {weather} .",
    "{instruments} lessons start in {months} .",
    "in {months} {poss} {family} {motion} to {capitals} .",
    # numbers
    "{poss} {family} bought {numbers} kilos of {fruits} .",
    "the {professions} is {numbers} years old .",
    "the train leaves at {numbers} o'clock .",
    "there were {numbers} {animals} on the farm .",
    "the gallery in {capitals} opens at {numbers} o'clock .",
    # colours
    "the {animals} has {colours} fur .",
    "{poss} {family} painted the door {colours} .",
    "she wore a {colours} dress to the {places} .",
    "{colours} is {poss} favourite colour .",
    # animals
    "the {animals} ate the {fruits} .",
    "{poss} {family} fed the {animals} on {days} .",
    "they keep {a} {animals} in the barn .",
    "{a} {animals} crossed the road .",
    # fruits
    "{poss} {family} ate {a} {fruits} for breakfast .",
    "this {fruits} tastes sweet .",
    "a ripe {fruits} fell from the tree .",
    # family
    "{poss} {family} is {a} {professions} .",
    "{poss} {family} called me yesterday .",
    "i visited {poss} {family} in {capitals} .",
    # countries and capitals
    "{capitals=} is the capital of {countries=} .",
    "the president of {countries} visited {capitals} .",
    "people in {countries} speak many languages .",
    "the team from {countries} won the cup .",
    "the flight to {capitals} was delayed .",
    "{poss} {family} lives in {capitals} .",
    "{countries} exports {fruits} and cheese .",
    # motion
    "yesterday we {motion} all the way home .",
    "the {professions} {motion} across the bridge .",
    "they {motion} quickly to the {places} .",
    # professions
    "the {professions} works at the {places} .",
    "she wants to become {a} {professions} .",
    "the {professions} helped {poss} {family} .",
    "ask the {professions} for advice .",
    # instruments
    "the {professions} plays the {instruments} .",
    "the sound of the {instruments} filled the hall .",
    # places
    "we met at the {places} after lunch .",
    "the {places} was crowded .",
    # weather
    "it was {weather} in {capitals} on {days} .",
    "the weather will be {weather} tomorrow .",
    "{a} {weather} day in {months} .",
)


def _compile(template):
    """Template -> list of (kind, value): ("word", w), ("slot", words), ("tied", words) or
    ("article", None)."""
    parts = []
    for tok in template.split():
        if tok == "{a}":
            parts.append(("article", None))
        elif tok.startswith("{") and tok.endswith("}"):
            name = tok[1:-1]
            tied = name.endswith("=")
            name = name.rstrip("=")
            words = _POSS if name == "poss" else DEMO_GROUPS[name]
            parts.append(("tied" if tied else "slot", words))
        else:
            parts.append(("word", tok))
    return parts


@functools.lru_cache(maxsize=4)
def demo_text(sentences: int = DEMO_SENTENCES, seed: int = DEMO_SEED) -> str:
    """The demo corpus as text: one lower-case sentence per line, tokens separated by spaces,
    each sentence ending in `` .`` (str).

    Deterministic: only ``random.Random(seed).random()`` is used, whose sequence Python keeps
    stable across versions, so the text is identical everywhere. ``sentences`` / ``seed`` allow
    smaller or different variants for experiments; the defaults are the documented corpus.
    """
    if sentences < 1:
        raise ValueError(f"sentences must be >= 1, got {sentences}")
    rnd = random.Random(seed).random
    compiled = [_compile(t) for t in _TEMPLATES]
    n_templates = len(compiled)
    lines = []
    for _ in range(sentences):
        parts = compiled[int(rnd() * n_templates)]
        tied_index = None
        out = []
        for kind, value in parts:
            if kind == "word":
                out.append(value)
            elif kind == "slot":
                out.append(value[int(rnd() * len(value))])
            elif kind == "tied":
                if tied_index is None:
                    tied_index = int(rnd() * len(value))
                out.append(value[tied_index])
            else:
                out.append(None)  # the article, settled once the next word is known
        for j, tok in enumerate(out):
            if tok is None:
                out[j] = "an" if out[j + 1][0] in "aeiou" else "a"
        lines.append(" ".join(out))
    return "\n".join(lines) + "\n"


def load_demo(sentences: int = DEMO_SENTENCES, seed: int = DEMO_SEED) -> tuple[np.ndarray, dict[str, int],
              dict[int, str]]:
    """The demo corpus as ``(corpus, word_to_id, id_to_word)``, like [`preprocess`][preprocess].

    corpus is a 1-D ``np.int32`` array (140,156 tokens with the defaults; sentence ends are the
    ``'.'`` token), ids in order of first appearance. See the module docstring for the groups.
    """
    return preprocess(demo_text(sentences, seed))


def demo_group_of(word: str) -> str | None:
    """Name of the ``DEMO_GROUPS`` group holding ``word``, or None."""
    for name, words in DEMO_GROUPS.items():
        if word in words:
            return name
    return None
