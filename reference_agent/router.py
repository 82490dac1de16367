"""The learned intent router: TF-IDF features and a linear model, applied from plain JSON.

``reference_agent/data/router.json`` is written by ``reference_agent/training/train_router.py``
from scikit-learn's ``TfidfVectorizer`` (character 2-5-grams within word boundaries, and word
1-2-grams, each L2-normalised, sublinear tf) and ``LogisticRegression`` (multinomial), trained
on the Bitext customer-service utterances (CDLA-Sharing-1.0, see ``data/router.LICENSE.md``)
plus the bundled suite's own phrasings. The file holds the vocabularies, the idf weights,
the coefficients and the intercepts, nothing executable.

Why this module applies the model itself instead of loading scikit-learn objects: the only
ways to ship a fitted scikit-learn pipeline are pickle (runs code on load: not acceptable for
a file in a repository) or skops (adds a dependency to every user of the agent for ~60 lines
of arithmetic). The arithmetic below is the documented behaviour of those two classes, and
``tests/test_agent_router.py`` checks that it gives scikit-learn's own probabilities on a
sample whenever scikit-learn is installed. numpy (already required by pandas) does the
matrix product.

``Router.repaired`` (used by ``predict``) maps a word the router never learned to the closest
word it did, with the standard library's ``difflib``: the candidates are the artifact's own
word lists (a few hundred words), so a spelling library (pyspellchecker is a training-only
extra) would add a run-time dependency for a smaller, less relevant vocabulary.

:class:`TextIndex` is the same TF-IDF representation fitted at run time on a handful of
documents (the FAQ entries of the store, which can be swapped), ranked by cosine similarity.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ARTIFACT", "FORMAT", "RoutePrediction", "Router", "TextIndex", "Thresholds", "load_router", "use_router"]

ARTIFACT = Path(__file__).with_name("data") / "router.json"
FORMAT = "reference-agent-router/1"
_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's whitespace normalisation for char_wb
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern
_ALPHA = re.compile(r"(?<![\w'])[a-z]+(?![\w'])")  # a word of letters only (not "i'm", not "ord2")
_REPAIR_CUTOFF = 0.8  # difflib ratio a repair needs (the phrase rules' and the FAQ's cutoff)


def _closest(word: str, candidates: Sequence[str]) -> str:
    """The one candidate closest to ``word`` (difflib ratio >= the cutoff), or ``word`` when
    there is none or two tie."""
    best = difflib.get_close_matches(word, candidates, n=2, cutoff=_REPAIR_CUTOFF)
    if not best:
        return word
    ratios = [difflib.SequenceMatcher(None, word, b).ratio() for b in best]
    return word if len(best) == 2 and ratios[0] == ratios[1] else best[0]


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams inside word boundaries, padded with one space (``analyzer="char_wb"``)."""
    grams: list[str] = []
    for word in _WHITE_SPACES.sub(" ", text).split():
        w = f" {word} "
        size = len(w)
        for n in range(low, high + 1):
            offset = 0
            grams.append(w[offset:offset + n])
            while offset + n < size:
                offset += 1
                grams.append(w[offset:offset + n])
            if offset == 0:  # a word shorter than n counts once
                break
    return grams


def word_ngrams(text: str, low: int, high: int) -> list[str]:
    """Word n-grams of the default token pattern (``analyzer="word"``)."""
    tokens = _TOKEN.findall(text)
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high, len(tokens)) + 1):
        grams.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return grams


@dataclass(frozen=True)
class _Vectorizer:
    """One TF-IDF block: analyzer, vocabulary (term -> column) and idf."""

    analyzer: str  # char_wb | word
    ngram_range: tuple[int, int]
    index: dict[str, int]
    idf: np.ndarray
    sublinear_tf: bool

    def terms(self, text: str) -> list[str]:
        low, high = self.ngram_range
        return char_wb_ngrams(text, low, high) if self.analyzer == "char_wb" else word_ngrams(text, low, high)

    def transform(self, text: str) -> dict[int, float]:
        """The L2-normalised tf-idf vector of ``text`` as {column: value}."""
        counts = Counter(self.index[t] for t in self.terms(text) if t in self.index)
        values = {}
        for col, count in counts.items():
            tf = 1.0 + math.log(count) if self.sublinear_tf else float(count)
            values[col] = tf * float(self.idf[col])
        norm = math.sqrt(sum(v * v for v in values.values()))
        return {c: v / norm for c, v in values.items()} if norm > 0 else {}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> _Vectorizer:
        terms = data["terms"]
        assert isinstance(terms, list)
        ngram_range = data["ngram_range"]
        assert isinstance(ngram_range, list)
        low, high = ngram_range
        return cls(str(data["analyzer"]), (int(low), int(high)), {t: i for i, t in enumerate(terms)},
                   np.asarray(data["idf"], dtype=np.float64), bool(data["sublinear_tf"]))

    @classmethod
    def fit(cls, analyzer: str, ngram_range: tuple[int, int], docs: Sequence[str]) -> _Vectorizer:
        """Vocabulary and smoothed idf of ``docs`` (``TfidfVectorizer`` defaults)."""
        probe = cls(analyzer, ngram_range, {}, np.zeros(0), True)
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(set(probe.terms(doc)))
        terms = sorted(df)
        n = len(docs)
        idf = np.asarray([math.log((1 + n) / (1 + df[t])) + 1.0 for t in terms], dtype=np.float64)
        return cls(analyzer, ngram_range, {t: i for i, t in enumerate(terms)}, idf, True)


@dataclass(frozen=True)
class RoutePrediction:
    """What the router thinks one text asks for."""

    label: str  # the most likely training label (a Bitext intent, or return / faq / none)
    probability: float  # of that label
    route_probabilities: tuple[tuple[str, float], ...]  # every route, most likely first
    label_probabilities: dict[str, float]

    @property
    def route(self) -> str:
        return self.route_probabilities[0][0]

    @property
    def confidence(self) -> float:
        return self.route_probabilities[0][1]

    @property
    def margin(self) -> float:
        """How far the best route is ahead of the second."""
        probs = self.route_probabilities
        return probs[0][1] - (probs[1][1] if len(probs) > 1 else 0.0)

    @classmethod
    def from_probabilities(cls, labels: Sequence[str], routes: dict[str, str], probs: np.ndarray) -> RoutePrediction:
        """The prediction for one row of ``predict_proba`` (columns in the order of ``labels``)."""
        by_label = {label: float(p) for label, p in zip(labels, probs, strict=True)}
        by_route = dict.fromkeys(sorted(set(routes.values())), 0.0)
        for label, p in by_label.items():
            by_route[routes[label]] += p
        best = int(np.argmax(probs))
        ranked = tuple(sorted(by_route.items(), key=lambda kv: (-kv[1], kv[0])))
        return cls(labels[best], float(probs[best]), ranked, by_label)


@dataclass(frozen=True)
class Thresholds:
    """When the agent acts on the router's route, asks which of two routes the customer means,
    or leaves the message to the phrase rules (``decide``).

    The trained artifact carries values chosen inside its own training data by
    ``reference_agent/training/train_router.py`` (cross-validated probabilities, a stated cost
    for each outcome); these defaults serve a hand-made router that has none.
    """

    confident: float = 0.35  # route probability needed to act on the router's choice
    margin: float = 0.05  # ... and its lead over the second route
    write_confident: float = 0.5  # an order change is never started on less
    handoff_confident: float = 0.8  # a handoff the phrase rules did not see ends the conversation
    handoff_coverage: float = 0.75  # ... and the router must have seen most of its words (not tuned:
    #   an out-of-domain guard, "I'm a travel agent"; in-domain data cannot choose it)
    contenders: float = 0.8  # a clarifying question only when two routes hold this much together

    def decide(self, prediction: RoutePrediction, kind: str) -> str:
        """``act``, ``clarify`` or ``rules`` for a prediction whose best route would start an
        action of ``kind``: ``write`` (an order change), ``handoff`` (one the phrase rules did
        not see), ``unseen`` (such a handoff in words the router mostly never saw: always the
        rules) or ``other``."""
        route, confidence = prediction.route_probabilities[0]
        second, second_p = prediction.route_probabilities[1]
        if route == "none" or (second == "none" and confidence < self.confident):
            return "rules"  # not a request the router knows: a yes, an id, a greeting
        if kind == "unseen":
            return "rules"
        needed = {"write": self.write_confident, "handoff": self.handoff_confident}.get(kind, self.confident)
        if confidence >= needed and prediction.margin >= self.margin:
            return "act"
        if second != "none" and confidence + second_p >= self.contenders:
            return "clarify"
        return "rules"


class Router:
    """A fitted TF-IDF + multinomial logistic-regression router loaded from JSON."""

    def __init__(self, data: dict[str, object]) -> None:
        if data.get("format") != FORMAT:
            raise ValueError(f"router artifact: format is {data.get('format')!r}, expected {FORMAT!r}")
        blocks = data["vectorizers"]
        assert isinstance(blocks, list)
        self.vectorizers = [_Vectorizer.from_json(b) for b in blocks]
        self.offsets = list(np.cumsum([0] + [len(v.index) for v in self.vectorizers])[:-1])
        self.labels: list[str] = list(data["labels"])  # type: ignore[call-overload]
        self.routes: dict[str, str] = dict(data["routes"])  # type: ignore[call-overload]
        self.coef = np.asarray(data["coef"], dtype=np.float64)  # classes x features
        self._by_feature = np.ascontiguousarray(self.coef.T)  # features x classes: one row per n-gram
        self._cache: dict[str, RoutePrediction] = {}  # a turn asks about the same text more than once
        self.intercept = np.asarray(data["intercept"], dtype=np.float64)
        self.known_words: frozenset[str] = frozenset(data.get("known_words", ()))  # type: ignore[call-overload]
        self.seen_words: frozenset[str] = frozenset(data.get("seen_words", ()))  # type: ignore[call-overload]
        self.faq_links: dict[str, list[str]] = dict(data.get("faq_links", {}))  # type: ignore[call-overload]
        self.thresholds = Thresholds(**data.get("thresholds", {}))  # type: ignore[arg-type]
        # what a misspelt word may be repaired to (``repaired``): correctly spelled and learned
        self._learned_words = tuple(sorted(w for w in self.known_words & self.seen_words if w.isalpha()))
        self._repairs: dict[str, str] = {}

    def coverage(self, text: str) -> float:
        """The share of the text's words the router has evidence about: seen in training, or
        misspelt (not a dictionary word, so not a topic of its own). "I'm a travel agent"
        scores low: "travel" is a real word the router never saw. 1.0 for no words."""
        words = _TOKEN.findall(text)
        covered = sum(w in self.seen_words or (w.isalpha() and w not in self.known_words) for w in words)
        return covered / len(words) if words else 1.0

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and values of the concatenated tf-idf blocks (``FeatureUnion``)."""
        cols: list[int] = []
        vals: list[float] = []
        for vec, offset in zip(self.vectorizers, self.offsets, strict=True):
            for col, value in vec.transform(text).items():
                cols.append(int(offset) + col)
                vals.append(value)
        return np.asarray(cols, dtype=np.int64), np.asarray(vals, dtype=np.float64)

    def probabilities(self, text: str) -> np.ndarray:
        """``predict_proba``: the softmax of the decision function, one value per label."""
        cols, vals = self.features(text)
        scores = vals @ self._by_feature[cols] + self.intercept
        scores -= scores.max()
        exp = np.exp(scores)
        return exp / exp.sum()  # type: ignore[no-any-return]

    def predict(self, text: str) -> RoutePrediction:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        if len(self._cache) >= 2048:
            self._cache.clear()
        prediction = self._cache[text] = self._predict(self.repaired(text))
        return prediction

    def _predict(self, text: str) -> RoutePrediction:
        return RoutePrediction.from_probabilities(self.labels, self.routes, self.probabilities(text))

    def repaired(self, text: str) -> str:
        """``text`` with each word the router has no evidence about (never seen in two
        training texts, not a dictionary word) replaced by the one closest word it has learned
        (a dictionary word seen in training): "redfund" -> "refund", "statsu" -> "status".
        A dictionary word is never changed, nor a typo the training texts already teach
        ("cancle"), nor one that two learned words explain equally well (left as it is)."""
        return _ALPHA.sub(lambda m: self._repair_word(m.group(0)), text)

    def _repair_word(self, word: str) -> str:
        if len(word) < 4 or word in self.known_words or word in self.seen_words:
            return word
        cached = self._repairs.get(word)
        if cached is None:
            if len(self._repairs) >= 4096:
                self._repairs.clear()
            cached = self._repairs[word] = _closest(word, self._learned_words)
        return cached


# use_router(): a router trained elsewhere (cross-validation folds), for the code inside the block
_CHOSEN: contextvars.ContextVar[Router | None] = contextvars.ContextVar("reference_agent_router", default=None)


@functools.lru_cache(maxsize=2)
def _read(path: Path) -> Router:
    """The artifact at ``path``, read once per process: a read-only model (its prediction memo
    depends on the text alone), so every run may share it."""
    with open(path, encoding="utf-8") as fh:
        return Router(json.load(fh))


def load_router(path: Path = ARTIFACT) -> Router:
    """The shipped router (read once per process), or the one :func:`use_router` chose here."""
    chosen = _CHOSEN.get()
    if chosen is not None and path == ARTIFACT:
        return chosen
    return _read(path)


@contextlib.contextmanager
def use_router(router: Router) -> Iterator[Router]:
    """Inside the block (and in the asyncio tasks it starts), the agent uses ``router``
    instead of the shipped one; for benchmarks/routing.py, whose folds retrain the router."""
    token = _CHOSEN.set(router)
    try:
        yield router
    finally:
        _CHOSEN.reset(token)


class TextIndex:
    """TF-IDF (character 2-5-grams + words) over a few documents, ranked by cosine similarity."""

    def __init__(self, docs: Iterable[str]) -> None:
        self.docs = list(docs)
        self.vectorizers = [_Vectorizer.fit("char_wb", (2, 5), self.docs), _Vectorizer.fit("word", (1, 2), self.docs)]
        self.vectors = [self._vector(d) for d in self.docs]

    def _vector(self, text: str) -> list[dict[int, float]]:
        return [v.transform(text) for v in self.vectorizers]

    def similarities(self, text: str) -> list[float]:
        """Cosine similarity of ``text`` to every document (0..1, the two blocks averaged)."""
        query = self._vector(text)
        out = []
        for doc in self.vectors:
            total = 0.0
            for q, d in zip(query, doc, strict=True):
                total += sum(v * d.get(c, 0.0) for c, v in q.items())
            out.append(total / len(query))
        return out
