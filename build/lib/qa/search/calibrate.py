"""What an unrelated question scores on one index: the baseline that makes confidence portable.

A passage's cosine to a question means little on its own: on a one-article corpus the best match
for an off-topic question scores about 0.1, on fifty thousand documents something always comes
closer. So each index version is probed once with questions about everything else (cooking,
sport, medicine, law...), and the confidence model sees how far a question's best passage rises
above what those probes reach on the same index.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from qa.index.embed import Embedder
from qa.index.store import IndexVersion

# Questions no ordinary corpus answers; varied in topic and form, none about technology policy.
PROBES = (
    "How long should sourdough bread rise before baking?",
    "Who won the football world cup final in 1966?",
    "What are the symptoms of iron deficiency anaemia?",
    "How do I change a flat bicycle tyre?",
    "Which grape varieties are used in champagne?",
    "When did the Roman emperor Hadrian build his wall?",
    "What is the best way to train a puppy to sit?",
    "How many strings does a classical harp have?",
    "Who painted the ceiling of the Sistine Chapel?",
    "What causes the northern lights?",
    "How do you knit a cable stitch?",
    "Which bird migrates the farthest each year?",
    "What is the capital gains tax rate on inherited houses?",
    "How is a tennis tie-break scored?",
    "What temperature should a roast chicken reach inside?",
    "Who wrote the opera The Marriage of Figaro?",
    "How do volcanoes form island chains?",
    "What is the difference between baroque and classical music?",
    "How much water should a cactus get in winter?",
    "Which muscles does a deadlift work?",
    "What did dinosaurs eat in the Jurassic period?",
    "How do I remove a red wine stain from a carpet?",
    "Where do monarch butterflies spend the winter?",
    "What is the plot of Pride and Prejudice?",
    "How many calories are in a banana?",
    "Why do cats purr?",
    "What are the rules of cricket's leg before wicket?",
    "How do you tune a guitar by ear?",
    "Who was the first woman to swim the English Channel?",
    "What vaccines does a newborn baby need?",
    "How are diamonds graded for clarity?",
    "When is the best season to plant tulip bulbs?",
)


@dataclass(frozen=True)
class Baseline:
    """The best-passage cosine of the probe questions on one index: mean and spread."""

    mean: float
    sd: float


_LOCK = threading.Lock()
_CACHE: dict[tuple[int, str], Baseline] = {}


def baseline(version: IndexVersion, embedder: Embedder) -> Baseline:
    """The probes' baseline on `version`, computed once per version and embedder."""
    key = (id(version), version.name)
    with _LOCK:
        found = _CACHE.get(key)
    if found is not None:
        return found
    vectors = embedder.embed(list(PROBES))
    best = [hits[0][1] if hits else 0.0
            for hits in (version.dense_search(v, 1) for v in vectors)]
    result = Baseline(float(np.mean(best)), max(float(np.std(best)), 0.02))
    with _LOCK:
        if len(_CACHE) > 16:
            _CACHE.clear()
        _CACHE[key] = result
    return result
