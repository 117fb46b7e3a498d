"""A small generated language for the `language` task: where someone grew up, then unrelated
everyday sentences, then the language they speak.

    i grew up in brazil . my cousin sold the old bike . it was windy on friday .
    now i speak fluent portuguese

Only the first sentence says which language comes at the end, `gap` words later. The filler
sentences come from templates whose slots are filled at random, so the exact words vary from
sequence to sequence while staying grammatical (subjects agree with their verbs).

A template is a tuple of slots; every slot is a word category, and a literal word is a category
of one. Generation is then two steps: choose templates whose lengths add up to the filler
length (a short Python loop per sequence), and fill every slot of the whole batch at once with
one vectorised draw.
"""
from __future__ import annotations

import numpy as np

# Where someone grew up decides the language. Several languages are not a prefix of the
# country's name, so nothing but memory links the two words.
PAIRS = (
    ("france", "french"), ("brazil", "portuguese"), ("austria", "german"),
    ("mexico", "spanish"), ("japan", "japanese"), ("egypt", "arabic"),
    ("kenya", "swahili"), ("netherlands", "dutch"), ("iran", "persian"),
    ("greece", "greek"),
)

OPENING = ("i", "grew", "up", "in")           # then the country and "."
CLOSING = ("i", "speak", "fluent")            # then the language

CATEGORIES = {
    "person": ("friend", "sister", "brother", "neighbour", "cousin", "boss"),
    "people": ("friends", "sisters", "brothers", "neighbours", "cousins", "parents"),
    "pronoun": ("i", "we", "they", "she", "he"),
    "one": ("i", "she", "he"),
    "many": ("we", "they"),
    "thing": ("car", "book", "garden", "house", "bike", "boat"),
    "things": ("cars", "books", "gardens", "houses", "bikes", "boats"),
    "place": ("coast", "city", "lake", "village", "river", "market"),
    "workplace": ("bank", "school", "hospital", "bakery", "office"),
    "job": ("nurse", "baker", "driver", "teacher", "doctor", "cook"),
    "adj": ("old", "new", "small", "big", "quiet", "red"),
    "mood": ("happy", "tired", "busy", "late", "hungry", "calm"),
    "weather": ("cold", "warm", "wet", "windy", "sunny", "grey"),
    "day": ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    "verb_s": ("likes", "fixes", "paints", "sells", "visits", "wants"),
    "verb_p": ("like", "fix", "paint", "sell", "visit", "want"),
    "verb_past": ("liked", "fixed", "painted", "sold", "visited", "wanted", "lost"),
    "verb_still": ("slept", "left", "waited", "laughed", "stayed", "walked"),
}

# Sentences of three to ten words, "." included. {name} is a slot; anything else is literal.
TEMPLATES = (
    "{pronoun} {verb_still} .",
    "it snowed .",
    "it was {weather} .",
    "{one} was {mood} .",
    "{many} were {mood} .",
    "we stayed home .",
    "my {person} called .",
    "my {people} called .",
    "the weather was {weather} .",
    "it rained on {day} .",
    "the {thing} was {adj} .",
    "the {things} were {adj} .",
    "my {person} is {mood} .",
    "my {people} are {mood} .",
    "i {verb_p} the {thing} .",
    "{pronoun} {verb_past} the {thing} .",
    "it was {weather} on {day} .",
    "i work as a {job} .",
    "my {person} {verb_past} the {thing} .",
    "we drove to the {place} .",
    "my {people} {verb_past} the {things} .",
    "my {person} {verb_s} the {adj} {thing} .",
    "my {people} {verb_p} the {adj} {things} .",
    "my {person} lives near the {place} .",
    "my {people} live near the {place} .",
    "my {person} works at the {workplace} .",
    "my {people} work at the {workplace} .",
    "on {day} i {verb_past} the {thing} .",
    "the {place} was {weather} and {adj} .",
    "we went to the {place} on {day} .",
    "we took the train to the {place} .",
    "my {person} works as a {job} in the {place} .",
    "on {day} my {person} {verb_past} the {adj} {thing} .",
    "my {person} and my {person} {verb_past} the {adj} {thing} .",
    "last {day} the {people} at the {workplace} were {mood} .",
)

# Lead-ins for "i speak fluent …", so that every filler length can be met exactly (the
# templates start at three words, so one or two leftover words go here).
CONNECTORS = ((), ("now",), ("today",), ("so",), ("and", "now"), ("these", "days"),
              ("by", "now"), ("at", "home"))


def _slots(template: str) -> list[str]:
    return template.split()


def _vocabulary() -> tuple[str, ...]:
    words: list[str] = ["."]
    seen = {"."}

    def add(w):
        if w not in seen:
            seen.add(w)
            words.append(w)

    for w in OPENING + CLOSING:
        add(w)
    for country, language in PAIRS:
        add(country)
    for country, language in PAIRS:
        add(language)
    for c in CONNECTORS:
        for w in c:
            add(w)
    for t in TEMPLATES:
        for slot in _slots(t):
            if not slot.startswith("{"):
                add(slot)
    for members in CATEGORIES.values():
        for w in members:
            add(w)
    return tuple(words)


class Grammar:
    """The vocabulary, and batches of sentences as word ids."""

    def __init__(self):
        self.words = _vocabulary()
        self.index = {w: i for i, w in enumerate(self.words)}
        self.countries = np.array([self.index[c] for c, _ in PAIRS])
        self.languages = np.array([self.index[lang] for _, lang in PAIRS])
        # Categories as one flat table: category k owns flat[start[k]:start[k] + size[k]].
        cats: list[tuple[int, ...]] = []
        cat_of: dict[tuple, int] = {}

        def category(key: tuple, members: tuple[str, ...]) -> int:
            if key not in cat_of:
                cat_of[key] = len(cats)
                cats.append(tuple(self.index[w] for w in members))
            return cat_of[key]

        self.templates: list[list[int]] = []
        for t in TEMPLATES:
            slots = []
            for s in _slots(t):
                if s.startswith("{"):
                    name = s[1:-1]
                    slots.append(category(("slot", name), CATEGORIES[name]))
                else:
                    slots.append(category(("word", s), (s,)))
            self.templates.append(slots)
        self.connectors = [[category(("word", w), (w,)) for w in c] for c in CONNECTORS]
        self._cat_size = np.array([len(c) for c in cats])
        self._cat_start = np.concatenate([[0], np.cumsum(self._cat_size)[:-1]])
        self._flat = np.array([w for c in cats for w in c])
        by_len: dict[int, list[int]] = {}
        for i, t in enumerate(self.templates):
            by_len.setdefault(len(t), []).append(i)
        self.by_length = {n: tuple(v) for n, v in sorted(by_len.items())}
        self.shortest = min(self.by_length)
        by_len_c: dict[int, list[int]] = {}
        for i, c in enumerate(self.connectors):
            by_len_c.setdefault(len(c), []).append(i)
        self.connectors_by_length = by_len_c
        self._memo: dict[tuple, tuple[int, ...]] = {}

    # The country sits at position 4 and the language at 4 + gap; between them: ".", the filler,
    # a connector and "i speak fluent".
    FIXED_BETWEEN = 5
    COUNTRY_AT = len(OPENING)

    @property
    def min_gap(self) -> int:
        return self.FIXED_BETWEEN

    def _fits(self, n: int) -> bool:
        return n == 0 or n >= self.shortest

    def _choices(self, n: int, by_length: dict) -> tuple[int, ...]:
        """The lengths in by_length that leave a remainder the templates can still fill."""
        key = (n, id(by_length))
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = tuple(
                m for m in by_length if m <= n and self._fits(n - m))
        return found

    def _plan(self, n: int, u) -> list[int]:
        """Slot categories for n filler words: a connector of 0-2 words, sentences before it.
        u: an iterator of uniform floats."""
        options = self._choices(n, self.connectors_by_length)
        k = options[int(next(u) * len(options))]
        pool = self.connectors_by_length[k]
        connector = self.connectors[pool[int(next(u) * len(pool))]]
        rest = n - k
        slots: list[int] = []
        while rest:
            lengths = self._choices(rest, self.by_length)
            m = lengths[int(next(u) * len(lengths))]
            pool = self.by_length[m]
            slots += self.templates[pool[int(next(u) * len(pool))]]
            rest -= m
        return slots + connector

    def sentences(self, rng: np.random.Generator, B: int, gap: int):
        """B word-id sequences of gap + 5 words, ending with the language word, and the index
        of each sequence's pair in PAIRS. Raises ValueError for a gap below min_gap."""
        if gap < self.min_gap:
            raise ValueError(f"the gap must be at least {self.min_gap} words")
        n = gap - self.FIXED_BETWEEN
        pair = rng.integers(0, len(PAIRS), size=B)
        # Enough uniforms for the longest plan: two per sentence plus two for the connector.
        draws = rng.random((B, 2 * (n // self.shortest) + 2))
        plans = [self._plan(n, iter(row.tolist())) for row in draws]
        cats = np.array(plans, dtype=np.int64).reshape(B, n)
        pick = (rng.random((B, n)) * self._cat_size[cats]).astype(np.int64)
        filler = self._flat[self._cat_start[cats] + pick]
        ids = np.empty((B, gap + 5), dtype=np.int64)
        ix = self.index
        ids[:, :4] = [ix[w] for w in OPENING]
        ids[:, 4] = self.countries[pair]
        ids[:, 5] = ix["."]
        ids[:, 6:6 + n] = filler
        ids[:, 6 + n:9 + n] = [ix[w] for w in CLOSING]
        ids[:, 9 + n] = self.languages[pair]
        return ids, pair

    def text(self, ids) -> str:
        return " ".join(self.words[int(i)] for i in ids)


GRAMMAR = Grammar()
