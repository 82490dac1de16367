"""Retrain the reference agent's router from the shared Bitext data (needs ``pip install -e '.[train]'``).

    python -m reference_agent.training.train_router [--data ../shared/data/bitext] [--out reference_agent/data]

Reads ``customer_service_train.csv`` (Bitext, CDLA-Sharing-1.0) and the suite's own
phrasings (``suite_phrasings.csv`` beside this file: the scripted user lines of
``datasets/support``, labelled with the route the suite expects), fits scikit-learn's
TF-IDF (char_wb 2-5-grams + word 1-2-grams) and a multinomial logistic regression, keeps the
features that carry weight, refits on those, and writes ``router.json`` (plain JSON weights:
vocabularies, idf, coefficients, intercepts, the decision thresholds; no pickle) and
``router.LICENSE.md``.

Protocol (``fit_router``): every choice is made inside the examples it is given, never on
data it will be scored on. ``benchmarks/routing.py`` calls ``fit_router`` on the training
folds of each outer fold, so its cross-validated figures are nested:

1. ``C`` of the logistic regression: an inner stratified ``INNER_FOLDS``-fold
   cross-validation of the examples (seed 0) scores every value of ``C_GRID`` by the route
   accuracy of its out-of-fold predictions (unpruned models); the best wins, ties going to
   the smaller ``C`` (stronger regularisation).
2. The decision thresholds (``router.Thresholds``: act, ask which of two routes, or leave
   the message to the phrase rules): with the out-of-fold probabilities of that ``C``, each
   out-of-fold example is put through the agent's own decision (``nlu.route_action`` and
   ``Thresholds.decide``) for every combination of ``THRESHOLD_GRID``, and the combination
   with the lowest total ``COSTS`` wins (a wrong action 1, a wrong order change or handoff
   2, a clarifying question that offers the right route 0.5, left to the phrase rules 1);
   ties go to fewer wrong actions, then fewer questions, then the grid order. The out-of-
   domain guard ``handoff_coverage`` is not chosen (in-domain data cannot inform it).
3. The model is refitted on all the examples with that ``C``, pruned to the
   ``KEEP_FEATURES`` most weighted features and refitted on those.

Deterministic: the folds are seeded, the solver is deterministic and nothing else samples;
running it twice writes the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline

from reference_agent.nlu import ROUTE_INTENTS, phrase_scores, route_action, router_text
from reference_agent.router import FORMAT, RoutePrediction, Router, Thresholds, use_router

__all__ = [
    "FAQ_LINKS",
    "ROUTES",
    "Example",
    "Selection",
    "build_artifact",
    "fit_pipeline",
    "fit_router",
    "load_bitext",
    "load_suite_phrasings",
    "main",
    "pipeline_from_artifact",
    "select",
]

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / ".." / "shared" / "data" / "bitext"
DEFAULT_OUT = HERE.parent / "data"
SEED = 0  # recorded in the artifact; lbfgs itself does not sample

#: training label -> route (the table in ../shared/data/bitext/README.md, plus the suite's
#: own labels: return requests, generic FAQ questions, and lines that ask for nothing).
ROUTES: dict[str, str] = {
    "track_order": "status",
    "cancel_order": "cancel",
    "get_refund": "refund", "track_refund": "refund",
    "change_shipping_address": "address", "set_up_shipping_address": "address",
    "contact_human_agent": "handoff", "contact_customer_service": "handoff", "complaint": "handoff",
    "payment_issue": "handoff",
    "check_refund_policy": "faq", "delivery_options": "faq", "delivery_period": "faq",
    "check_payment_methods": "faq", "check_cancellation_fee": "faq", "check_invoices": "faq",
    "check_invoice": "faq", "get_invoice": "faq", "faq": "faq",
    "create_account": "info_or_decline", "delete_account": "info_or_decline", "edit_account": "info_or_decline",
    "switch_account": "info_or_decline", "recover_password": "info_or_decline",
    "registration_problems": "info_or_decline", "newsletter_subscription": "info_or_decline",
    "place_order": "info_or_decline", "change_order": "info_or_decline", "review": "info_or_decline",
    "return": "return",
    "none": "none",
}
#: label -> the FAQ entries (``datasets/store/faq.json``) that answer it, best first.
FAQ_LINKS: dict[str, list[str]] = {
    "check_refund_policy": ["return-policy", "refund-time"],
    "delivery_options": ["delivery-options", "shipping-cost", "international"],
    "delivery_period": ["shipping-times"],
    "check_payment_methods": ["payment-methods"],
    "check_cancellation_fee": ["cancellation-fee"],
    "check_invoices": ["invoice"], "check_invoice": ["invoice"], "get_invoice": ["invoice"],
    "create_account": ["account-create"], "registration_problems": ["account-create"],
    "delete_account": ["account-close"], "edit_account": ["account-edit"], "switch_account": ["account-edit"],
    "recover_password": ["account-password"], "newsletter_subscription": ["newsletter"],
    "place_order": ["place-order"], "change_order": ["order-change"], "review": ["review"],
    "track_refund": ["refund-time"],
}
CHAR_NGRAMS = (2, 5)
WORD_NGRAMS = (1, 2)
C_GRID = (3.0, 10.0, 30.0)  # the inverse regularisation strengths the inner cross-validation compares
INNER_FOLDS = 3
#: the decision thresholds compared on the out-of-fold predictions (router.Thresholds fields).
#: An order change is never started on less than an even chance (write_confident >= 0.5).
THRESHOLD_GRID: dict[str, tuple[float, ...]] = {
    "confident": (0.25, 0.35, 0.5),
    "margin": (0.0, 0.05, 0.1, 0.2),
    "write_confident": (0.5, 0.6, 0.7, 0.8),
    "handoff_confident": (0.5, 0.65, 0.8, 0.9),
    "contenders": (0.6, 0.8, 0.9),
}
#: what each outcome of a first reply costs when the thresholds are chosen
COSTS = {"wrong": 1.0, "wrong_write": 2.0, "wrong_handoff": 2.0, "question": 0.5, "rules": 1.0}
# The suite's ~140 lines speak the product's own language (returns, "money back" meaning a
# refund, order ids) among ~19,500 Bitext rows: each counts as this many rows.
SUITE_WEIGHT = 10.0
LEXICON_WEIGHT = 3.0
KEEP_FEATURES = 5000  # the features with the largest weights; the rest add size, not accuracy
DIGITS = 4  # significant digits kept of each coefficient (the artifact IS the rounded model)


@dataclass(frozen=True)
class Example:
    text: str  # as the customer wrote it
    label: str
    weight: float = 1.0  # sample weight in the fit


class DataMissingError(RuntimeError):
    """The shared training data is not where it should be."""


def load_bitext(folder: Path) -> list[Example]:
    """The Bitext rows (utterance, intent)."""
    path = folder / "customer_service_train.csv"
    if not path.is_file():
        raise DataMissingError(f"{path}: not found (the Bitext training file lives in ../shared/data/bitext/)")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    unknown = sorted({r["intent"] for r in rows} - set(ROUTES))
    if unknown:
        raise DataMissingError(f"{path}: intent: unknown intents {unknown}; add them to ROUTES")
    return [Example(r["utterance"], r["intent"]) for r in rows]


def load_suite_phrasings(path: Path = HERE / "suite_phrasings.csv") -> list[Example]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [Example(r["utterance"], r["label"], SUITE_WEIGHT) for r in csv.DictReader(fh)]


#: the phrase rules' intents (reference_agent.nlu.INTENTS) -> training labels
_LEXICON_LABELS = {"track_order": "track_order", "return": "return", "refund": "get_refund", "cancel": "cancel_order",
                   "change_address": "change_shipping_address", "human": "contact_human_agent",
                   "complaint": "complaint", "greeting": "none", "thanks": "none", "goodbye": "none",
                   "affirm": "none", "deny": "none"}


def load_lexicon() -> list[Example]:
    """The phrase rules' own lexicon (``nlu.INTENTS``: "money back" is a refund, "send it back"
    a return, "nope" asks for nothing) as short examples, so the router knows the product's
    words as well as Bitext's."""
    from reference_agent.nlu import INTENTS

    # A phrase the rules themselves weigh under 2 ("agent", "package") is no request on its own.
    return [Example(phrase, label, LEXICON_WEIGHT) for intent, label in _LEXICON_LABELS.items()
            for phrase, weight in INTENTS[intent].items() if weight >= 2]


def _features(vocabularies: tuple[list[str], list[str]] | None = None) -> FeatureUnion:
    """The TF-IDF blocks (char_wb + word); with ``vocabularies``, fixed to those terms."""
    char_vocab, word_vocab = vocabularies or (None, None)
    return FeatureUnion([
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, lowercase=False, sublinear_tf=True,
                                 min_df=1 if char_vocab else 2, vocabulary=char_vocab, dtype=np.float64)),
        ("word", TfidfVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, lowercase=False, sublinear_tf=True,
                                 min_df=1 if word_vocab else 2, vocabulary=word_vocab, dtype=np.float64)),
    ])


def _classifier(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=3000, random_state=SEED)


def fit_pipeline(texts: Sequence[str], labels: Sequence[str], *, c: float,
                 vocabularies: tuple[list[str], list[str]] | None = None,
                 weights: Sequence[float] | None = None) -> Pipeline:
    """TF-IDF (char_wb + word) + multinomial logistic regression, fitted on router texts."""
    model = Pipeline([("features", _features(vocabularies)), ("clf", _classifier(c))])
    model.fit(list(texts), list(labels), clf__sample_weight=None if weights is None else np.asarray(weights))
    return model


@dataclass(frozen=True)
class Selection:
    """What the inner cross-validation chose (``select``), recorded in the artifact."""

    c: float
    thresholds: Thresholds
    accuracy: dict[float, float]  # C -> out-of-fold route accuracy
    cost: float  # the chosen thresholds' total cost on the out-of-fold predictions
    outcomes: dict[str, int]  # of those predictions under the chosen thresholds: act_right, act_wrong, ...

    def as_json(self) -> dict[str, Any]:
        return {"protocol": f"{INNER_FOLDS}-fold stratified inner cross-validation (seed {SEED}) of the "
                            "training examples; see reference_agent/training/train_router.py",
                "c": self.c, "accuracy_by_c": {str(c): round(a, 6) for c, a in self.accuracy.items()},
                "cost": self.cost, "outcomes": self.outcomes}


#: the route a dialog intent acts on (ROUTE_INTENTS the other way round)
_INTENT_ROUTES = {intent: route for route, intent in ROUTE_INTENTS.items()} | {
    "complaint": "handoff", "payment_issue": "handoff"}


def _out_of_fold(texts: list[str], labels: list[str], weights: np.ndarray) -> tuple[list[str], dict[float, np.ndarray]]:
    """Out-of-fold ``predict_proba`` of every example for every C of ``C_GRID`` (unpruned)."""
    classes = sorted(set(labels))
    oof = {c: np.zeros((len(texts), len(classes))) for c in C_GRID}
    splitter = StratifiedKFold(n_splits=INNER_FOLDS, shuffle=True, random_state=SEED)
    y = np.asarray(labels)
    for fit_idx, held_idx in splitter.split(texts, labels):
        features = _features()
        x_fit = features.fit_transform([texts[i] for i in fit_idx])
        x_held = features.transform([texts[i] for i in held_idx])
        clf = _classifier(C_GRID[0]).set_params(warm_start=True)  # each C starts from the previous solution
        for c in C_GRID:
            clf.set_params(C=c).fit(x_fit, y[fit_idx], sample_weight=weights[fit_idx])
            assert list(clf.classes_) == classes  # stratified: every label is in every inner training part
            oof[c][held_idx] = clf.predict_proba(x_held)
    return classes, oof


def _word_router(classes: list[str], known: Sequence[str], seen: Sequence[str]) -> Router:
    """A router without features, carrying the routes and word lists the phrase rules and
    ``nlu.route_action`` read while the thresholds are chosen."""
    return Router({"format": FORMAT, "vectorizers": [], "labels": classes,
                   "routes": {label: ROUTES[label] for label in classes},
                   "coef": [[] for _ in classes], "intercept": [0.0] * len(classes),
                   "known_words": sorted(known), "seen_words": sorted(seen)})


def _choose_thresholds(examples: Sequence[Example], classes: list[str], probs: np.ndarray,
                       router: Router) -> tuple[Thresholds, float, dict[str, int]]:
    """The ``THRESHOLD_GRID`` combination of least total ``COSTS`` on out-of-fold predictions."""
    routes = {label: ROUTES[label] for label in classes}
    grid = [Thresholds(**dict(zip(THRESHOLD_GRID, values, strict=True)))
            for values in itertools.product(*THRESHOLD_GRID.values())]
    strictest = Thresholds(**{name: max(values) for name, values in THRESHOLD_GRID.items()})
    fixed: list[str] = []  # outcomes that no combination changes
    open_rows: list[tuple[RoutePrediction, str, str, str]] = []  # (prediction, acted route, kind, truth)
    with use_router(router):
        for example, row in zip(examples, probs, strict=True):
            truth = ROUTES[example.label]
            prediction = RoutePrediction.from_probabilities(classes, routes, row)
            if prediction.route == "none":
                fixed.append("rules_right" if truth == "none" else "rules")
                continue
            _label, intent, kind = route_action(example.text, prediction, phrase_scores(example.text))
            acted = _INTENT_ROUTES[intent]
            if strictest.decide(prediction, kind) == "act":  # acts under every combination
                fixed.append(_outcome("act", acted, kind, prediction, truth))
            else:
                open_rows.append((prediction, acted, kind, truth))
    base = Counter(fixed)
    best: tuple[tuple[float, int, int, int], Thresholds, Counter[str]] | None = None
    for rank, thresholds in enumerate(grid):
        outcomes = base + Counter(_outcome(thresholds.decide(p, kind), acted, kind, p, truth)
                                  for p, acted, kind, truth in open_rows)
        cost = sum(COSTS.get(name, 0.0) * n for name, n in outcomes.items())
        wrong = outcomes["wrong"] + outcomes["wrong_write"] + outcomes["wrong_handoff"]
        key = (round(cost, 9), wrong, outcomes["question"] + outcomes["question_wrong"], rank)
        if best is None or key < best[0]:
            best = (key, thresholds, outcomes)
    assert best is not None
    (cost, *_rest), thresholds, outcomes = best
    return thresholds, cost, dict(sorted(outcomes.items()))


def _outcome(step: str, acted: str, kind: str, prediction: RoutePrediction, truth: str) -> str:
    """The name of what a first reply did (a key of ``COSTS``, or a right one costing nothing)."""
    if step == "act":
        if acted == truth:
            return "act_right"
        return "wrong_write" if kind == "write" else "wrong_handoff" if acted == "handoff" else "wrong"
    if step == "clarify":
        offered = {route for route, _p in prediction.route_probabilities[:2]}
        return "question" if truth in offered else "question_wrong"
    return "rules_right" if truth == "none" else "rules"


def select(examples: Sequence[Example], *, known: Sequence[str], seen: Sequence[str]) -> Selection:
    """C and the decision thresholds, chosen by cross-validation inside ``examples`` (see the
    module docstring for the protocol)."""
    texts = [router_text(e.text) for e in examples]
    labels = [e.label for e in examples]
    classes, oof = _out_of_fold(texts, labels, np.asarray([e.weight for e in examples]))
    routes = {label: ROUTES[label] for label in classes}
    truth = [ROUTES[label] for label in labels]
    accuracy = {}
    for c, probs in oof.items():
        right = sum(RoutePrediction.from_probabilities(classes, routes, row).route == t
                    for row, t in zip(probs, truth, strict=True))
        accuracy[c] = right / len(texts)
    c = max(C_GRID, key=lambda value: (accuracy[value], -value))  # ties: the smaller C
    thresholds, cost, outcomes = _choose_thresholds(examples, classes, oof[c], _word_router(classes, known, seen))
    return Selection(c, thresholds, accuracy, cost, outcomes)


def fit_router(examples: Sequence[Example], *, extra_words: Sequence[str] = (), keep: int | None = KEEP_FEATURES,
               source: str = "") -> tuple[dict[str, Any], Selection]:
    """The router artifact for ``examples``: hyper-parameters and thresholds chosen inside them
    (``select``), then the model refitted on all of them (``train``)."""
    known, seen = known_words(examples, extra_words), seen_words(examples)
    selection = select(examples, known=known, seen=seen)
    model = train(examples, c=selection.c, keep=keep)
    return build_artifact(model, known_words=known, seen=seen, selection=selection, source=source), selection


def _pruned_vocabularies(model: Pipeline, keep: int) -> tuple[list[str], list[str]]:
    coef = model.named_steps["clf"].coef_
    weight = np.abs(coef).max(axis=0)
    order = np.argsort(-weight, kind="stable")[:keep]
    union = model.named_steps["features"]
    char_terms = union.transformer_list[0][1].get_feature_names_out()
    word_terms = union.transformer_list[1][1].get_feature_names_out()
    n_char = len(char_terms)
    chars = sorted(str(char_terms[i]) for i in order if i < n_char)
    words = sorted(str(word_terms[i - n_char]) for i in order if i >= n_char)
    return chars, words


def train(examples: Sequence[Example], *, c: float, keep: int | None = KEEP_FEATURES) -> Pipeline:
    """Fit, keep the ``keep`` most weighted features, refit on those (``keep=None``: no pruning)."""
    texts = [router_text(e.text) for e in examples]
    labels = [e.label for e in examples]
    weights = [e.weight for e in examples]
    model = fit_pipeline(texts, labels, c=c, weights=weights)
    if keep is None:
        return model
    return fit_pipeline(texts, labels, c=c, vocabularies=_pruned_vocabularies(model, keep), weights=weights)


def seen_words(examples: Sequence[Example]) -> list[str]:
    """Words that occur in at least two training texts: what the router has evidence about."""
    df: Counter[str] = Counter()
    for e in examples:
        df.update(set(re.findall(r"(?u)\b\w\w+\b", router_text(e.text))))
    return sorted(w for w, n in df.items() if n >= 2)


def build_artifact(model: Pipeline, *, known_words: Sequence[str] = (), seen: Sequence[str] = (),
                   selection: Selection | None = None, source: str = "") -> dict[str, Any]:
    """The JSON document the agent loads (:class:`reference_agent.router.Router`)."""
    union = model.named_steps["features"]
    clf = model.named_steps["clf"]
    blocks = []
    for _name, vec in union.transformer_list:
        blocks.append({"analyzer": vec.analyzer, "ngram_range": list(vec.ngram_range),
                       "sublinear_tf": vec.sublinear_tf,
                       "terms": [str(t) for t in vec.get_feature_names_out()],
                       "idf": [float(x) for x in vec.idf_]})
    labels = [str(x) for x in clf.classes_]
    return {
        "format": FORMAT,
        "licence": "Derived from the Bitext customer-support dataset, CDLA-Sharing-1.0: see router.LICENSE.md",
        "source": source,
        "vectorizers": blocks,
        "labels": labels,
        "routes": {label: ROUTES[label] for label in labels},
        "faq_links": {label: FAQ_LINKS[label] for label in labels if label in FAQ_LINKS},
        "coef": [[float(f"{x:.{DIGITS}g}") for x in row] for row in clf.coef_],
        # 8 significant digits: the last bits of a solution depend on the BLAS threads
        "intercept": [float(f"{x:.{DIGITS + 4}g}") for x in clf.intercept_],
        "known_words": sorted(set(known_words)),
        "seen_words": sorted(set(seen)),
        "thresholds": dataclasses.asdict(selection.thresholds if selection else Thresholds()),
        "selection": selection.as_json() if selection else None,
    }


def pipeline_from_artifact(data: dict[str, Any]) -> Pipeline:
    """scikit-learn objects carrying the artifact's weights (to check the JSON inference)."""
    vecs = []
    for block in data["vectorizers"]:
        vec = TfidfVectorizer(analyzer=block["analyzer"], ngram_range=tuple(block["ngram_range"]), lowercase=False,
                              sublinear_tf=block["sublinear_tf"], vocabulary=block["terms"], dtype=np.float64)
        vec.idf_ = np.asarray(block["idf"], dtype=np.float64)
        vecs.append((block["analyzer"], vec))
    clf = LogisticRegression()
    clf.classes_ = np.asarray(data["labels"])
    clf.coef_ = np.asarray(data["coef"], dtype=np.float64)
    clf.intercept_ = np.asarray(data["intercept"], dtype=np.float64)
    return Pipeline([("features", FeatureUnion(vecs)), ("clf", clf)])


def known_words(examples: Sequence[Example], extra_text: Sequence[str] = ()) -> list[str]:
    """Correctly spelled words: those of the training texts that an English dictionary knows
    (pyspellchecker's word-frequency list), plus the dictionary's most frequent words."""
    from spellchecker import SpellChecker  # train extra only

    dictionary = SpellChecker(language="en")
    words: set[str] = set()
    for text in [*(e.text for e in examples), *extra_text]:
        words.update(w for w in router_text(text).split() if w.isalpha() and len(w) >= 4)
    found = {w for w in words if w in dictionary}
    ranked = sorted(dictionary.word_frequency.items(), key=lambda kv: (-kv[1], kv[0]))
    frequent = [w for w, _ in ranked if w.isalpha() and len(w) >= 4][:25000]
    return sorted(found | set(frequent))


def _faq_texts() -> list[str]:
    path = HERE.parents[1] / "datasets" / "store" / "faq.json"
    entries = json.loads(path.read_text(encoding="utf-8"))
    return [f"{e['question']} {e['answer']} {' '.join(e['keywords'])}" for e in entries]


LICENSE_NOTE = """\
# Licence of the router weights (`router.json`)

`router.json` is derived from the **Bitext sample pre-built customer-support dataset for
English** (Bitext Innovations), published under the **Community Data License Agreement –
Sharing 1.0 (CDLA-Sharing-1.0)**, https://cdla.dev/sharing-1-0/, and from the utterances of
this project's own suite (`datasets/support`). It holds only model weights (vocabularies,
idf, coefficients, intercepts) and a list of correctly spelled English words (from
pyspellchecker's word-frequency list, MIT); it does not contain the utterances.

Under CDLA-Sharing-1.0, results of computational analysis (such as trained weights) are not
themselves "Enhanced Data"; we ship this note with the file anyway so that the provenance
travels with it. Retrain with `python -m reference_agent.training.train_router`.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of customer_service_train.csv")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where router.json is written")
    parser.add_argument("--keep", type=int, default=KEEP_FEATURES, help="features kept after pruning")
    args = parser.parse_args(argv)
    try:
        bitext = load_bitext(args.data)
    except DataMissingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    examples = [*bitext, *load_suite_phrasings(), *load_lexicon()]
    artifact, selection = fit_router(examples, extra_words=_faq_texts(), keep=args.keep,
                                     source=f"{len(bitext)} Bitext rows + {len(examples) - len(bitext)} suite and "
                                            f"lexicon lines, {args.keep} features")
    print(f"inner cross-validation: route accuracy by C {selection.accuracy}; C={selection.c}; "
          f"thresholds {selection.thresholds} (cost {selection.cost}, {selection.outcomes})")
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "router.json"
    target.write_text(json.dumps(artifact, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / "router.LICENSE.md").write_text(LICENSE_NOTE, encoding="utf-8")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB, {len(artifact['labels'])} labels, "
          f"{sum(len(b['terms']) for b in artifact['vectorizers'])} features)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
