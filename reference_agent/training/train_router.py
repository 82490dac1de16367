"""Retrain the reference agent's router from the shared Bitext data (needs ``pip install -e '.[train]'``).

    python -m reference_agent.training.train_router [--data ../shared/data/bitext] [--out reference_agent/data]

Reads ``customer_service_train.csv`` (Bitext, CDLA-Sharing-1.0) and the suite's own
phrasings (``suite_phrasings.csv`` beside this file: the scripted user lines of
``datasets/support``, labelled with the route the suite expects), fits scikit-learn's
TF-IDF (char_wb 2-5-grams + word 1-2-grams) and a multinomial logistic regression, keeps the
features that carry weight, refits on those, and writes ``router.json`` (plain JSON weights:
vocabularies, idf, coefficients, intercepts; no pickle) and ``router.LICENSE.md``.
Deterministic: the solver is deterministic and no step samples.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from reference_agent.nlu import router_text
from reference_agent.router import FORMAT

__all__ = [
    "FAQ_LINKS",
    "ROUTES",
    "Example",
    "build_artifact",
    "fit_pipeline",
    "load_bitext",
    "load_suite_phrasings",
    "main",
    "pipeline_from_artifact",
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
C = 10.0  # chosen by 5-fold cross-validation on the training file (benchmarks/routing.py prints it)
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


def fit_pipeline(texts: Sequence[str], labels: Sequence[str], *, c: float = C,
                 vocabularies: tuple[list[str], list[str]] | None = None,
                 weights: Sequence[float] | None = None) -> Pipeline:
    """TF-IDF (char_wb + word) + multinomial logistic regression, fitted on router texts."""
    char_vocab, word_vocab = vocabularies or (None, None)
    features = FeatureUnion([
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, lowercase=False, sublinear_tf=True,
                                 min_df=1 if char_vocab else 2, vocabulary=char_vocab, dtype=np.float64)),
        ("word", TfidfVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, lowercase=False, sublinear_tf=True,
                                 min_df=1 if word_vocab else 2, vocabulary=word_vocab, dtype=np.float64)),
    ])
    model = Pipeline([("features", features),
                      ("clf", LogisticRegression(C=c, max_iter=3000, random_state=SEED))])
    model.fit(list(texts), list(labels), clf__sample_weight=None if weights is None else np.asarray(weights))
    return model


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


def train(examples: Sequence[Example], *, c: float = C, keep: int | None = KEEP_FEATURES) -> Pipeline:
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
    from collections import Counter

    df: Counter[str] = Counter()
    for e in examples:
        df.update(set(re.findall(r"(?u)\b\w\w+\b", router_text(e.text))))
    return sorted(w for w, n in df.items() if n >= 2)


def build_artifact(model: Pipeline, *, known_words: Sequence[str] = (), seen: Sequence[str] = (),
                   source: str = "") -> dict[str, Any]:
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
        "intercept": [float(x) for x in clf.intercept_],
        "known_words": sorted(set(known_words)),
        "seen_words": sorted(set(seen)),
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
    model = train(examples, keep=args.keep)
    artifact = build_artifact(model, known_words=known_words(examples, _faq_texts()), seen=seen_words(examples),
                              source=f"{len(bitext)} Bitext rows + {len(examples) - len(bitext)} suite lines, "
                                     f"C={C}, {args.keep} features")
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "router.json"
    target.write_text(json.dumps(artifact, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / "router.LICENSE.md").write_text(LICENSE_NOTE, encoding="utf-8")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB, {len(artifact['labels'])} labels, "
          f"{sum(len(b['terms']) for b in artifact['vectorizers'])} features)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
