"""FAQ retrieval: the entry that answers a question, or none at all.

Entries are ranked by TF-IDF cosine similarity between the question and each entry's
question and keywords (:class:`reference_agent.router.TextIndex`: character 2-5-grams and
words, fitted on the store's own FAQ, so a swapped fixture folder works), plus what the
learned router knows from thousands of real phrasings: the probability of each Bitext FAQ
intent ("check_cancellation_fee", "delivery_period"...) is credited to the FAQ entries that
answer it (``faq_links`` in the router artifact). Misspelt words are mapped to the closest FAQ
word first (words the dictionary knows are left alone). An entry's keyword phrases found word for word in the question add to
its similarity.

When the router is sure of a Bitext FAQ intent (probability >= ``_SURE``), the entries linked
to that intent rank before every other entry, whatever their similarity: the classifier
learned the topic from thousands of labelled phrasings, the TF-IDF index sees a few short
documents, so a question that shares more words with another entry ("can I get the invoice
for the cancellation fee?") is still answered on the labelled topic. Similarity decides
among the linked entries, and alone when the router is not sure or the store has none of
the linked entries (a swapped fixture folder). Below :data:`MIN_SCORE` nothing is returned,
so a question on a topic the FAQ does not cover gets "I don't have an answer" instead of the
nearest entry on another topic.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from typing import Any

from reference_agent.nlu import router_text
from reference_agent.router import TextIndex, load_router

__all__ = ["MIN_SCORE", "rank_faq"]

MIN_SCORE = 0.35  # below this an entry does not answer the question (see tests/test_agent_faq.py)
_SECOND_LINK = 0.5  # an entry listed second for an intent gets half the credit
_KEYWORD = 0.2  # per keyword phrase found in the question (two at most)
_SURE = 0.6  # a router label this probable credits its first FAQ entry directly ...
_SURE_CREDIT = 1.0  # ... with its probability
_CREDIT = 2.0  # the router can triple a similarity, never create one: off-topic questions stay off


# The two memos below are keyed by the FAQ's own text and never changed after they are built:
# another FAQ (another store) gets its own entries, so they are safe to share process-wide.
@functools.lru_cache(maxsize=8)
def _index(docs: tuple[str, ...]) -> TextIndex:
    return TextIndex(docs)


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", router_text(text))) + " "


def _doc(entry: dict[str, Any]) -> str:
    return router_text(f"{entry['question']} {' '.join(entry.get('keywords') or [])}")


@functools.lru_cache(maxsize=8)
def _vocabulary(docs: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({w for d in docs for w in re.findall(r"[a-z]{4,}", d)}))


def _repaired(text: str, vocabulary: tuple[str, ...], known: frozenset[str]) -> str:
    """Misspelt words -> the closest FAQ word ("warrenty" -> "warranty"); a correctly spelled
    word (in the router's dictionary list) is never changed."""
    def fix(m: re.Match[str]) -> str:
        w = m.group(0)
        if w in known or w in vocabulary:
            return w
        close = difflib.get_close_matches(w, vocabulary, n=1, cutoff=0.8)
        return close[0] if close else w

    return re.sub(r"[a-z]{4,}", fix, text)


def rank_faq(question: str, entries: Sequence[dict[str, Any]]) -> list[tuple[float, dict[str, Any]]]:
    """FAQ entries best first, with their scores (cosine similarity + router credit)."""
    if not entries:
        return []
    router = load_router()
    docs = tuple(_doc(e) for e in entries)
    text = _repaired(router_text(question), _vocabulary(docs), router.known_words)
    similarities = _index(docs).similarities(text)
    prediction = router.predict(text)
    credit: dict[str, float] = {}
    for label, links in router.faq_links.items():
        p = prediction.label_probabilities.get(label, 0.0)
        for rank, faq_id in enumerate(links):
            credit[faq_id] = credit.get(faq_id, 0.0) + p * (1.0 if rank == 0 else _SECOND_LINK)
    # A topic the router is sure of is an answer even in words the entry does not use
    # ("where can I download the bill" -> invoice).
    sure = {links[0]: p for label, links in router.faq_links.items()
            if (p := prediction.label_probabilities.get(label, 0.0)) >= _SURE}
    # ... and its entries come first: the classifier learned the topic from thousands of
    # labelled phrasings, the index sees a few short documents.
    labelled = {faq_id for label, links in router.faq_links.items()
                if prediction.label_probabilities.get(label, 0.0) >= _SURE for faq_id in links}
    padded = _words(text)
    scored = []
    for sim, entry in zip(similarities, entries, strict=True):
        # An entry's own keyword phrase, word for word in the question, is strong evidence.
        hits = sum(1 for kw in entry.get("keywords") or [] if _words(kw) in padded)
        score = (sim + _KEYWORD * min(hits, 2)) * (1.0 + _CREDIT * credit.get(entry["faq_id"], 0.0))
        score += _SURE_CREDIT * sure.get(entry["faq_id"], 0.0)
        scored.append((score, entry))
    return sorted(scored, key=lambda x: (x[1]["faq_id"] not in labelled, -x[0]))
