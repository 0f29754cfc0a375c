"""Dense search with the real bundled encoder (int8 ONNX), by vectors alone: no BM25, no fusion."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.config import Settings
from qa.index.build import build_index
from qa.index.embed import load_embedder
from qa.index.index_dir import IndexDir
from qa.index.store import IndexVersion
from qa.search.retrieve import query_terms, stemmer

from .conftest import REPO, seed_encoder

pytestmark = pytest.mark.model

TOPICS = {
    "bees.md": "# Honey bees\n\nA colony has one queen and thousands of workers. Forager workers "
               "return to the hive and perform a waggle dance whose angle and length tell the "
               "others where flowers are.\n",
    "kilns.txt": "Pottery kilns\n\nA stoneware glaze matures at about 1,250 degrees Celsius. "
                 "Potters fire the kiln slowly overnight so that trapped water does not crack "
                 "the clay.\n",
    "tides.txt": "Tides\n\nThe pull of the Moon raises two bulges in the oceans, so most coasts "
                 "see two high waters a day. Spring tides come when Sun and Moon line up.\n",
    "bread.md": "# Sourdough\n\nA sourdough starter is flour and water colonised by wild yeast "
                "and lactic acid bacteria. Bakers feed it daily and keep part of it back.\n",
    "chess.txt": "Chess openings\n\nThe Sicilian Defence answers 1.e4 with c5, fighting for the "
                 "centre from the side. It leads to sharp, unbalanced positions.\n",
}


@pytest.fixture(scope="module")
def dense_index(tmp_path_factory: pytest.TempPathFactory,
                bundled_encoders: dict[str, Path]) -> tuple[IndexVersion, Settings]:
    root = tmp_path_factory.mktemp("dense")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(REPO / "corpus" / "eu-japan-digital-partnership.txt", corpus)
    for name, text in TOPICS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = seed_encoder(Settings(corpus_dir=corpus, index_dir=root / "index"),
                            bundled_encoders)
    embedder = load_embedder(settings)
    build_index(settings, lambda: embedder)
    version = IndexDir(settings.index_dir).open_current()
    yield version, settings
    version.close()


def test_every_chunk_finds_itself_first_by_its_text(dense_index: tuple[IndexVersion, Settings]):
    version, settings = dense_index
    embedder = load_embedder(settings)  # the encoder the version keeps
    rows = version.db.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
    assert len(rows) >= 12  # the article alone gives several chunks
    # The stored vectors embed the title and section too; the query is the bare text.
    vectors = embedder.embed([text for _, text in rows])
    firsts = [version.dense_search(v, 1)[0][0] for v in vectors]
    assert firsts == [cid for cid, _ in rows]


PARAPHRASES = [
    # question, the passage it should find, a phrase only that passage holds
    ("How do insects show their nest-mates the way to blossoms?", "waggle dance"),
    ("How hot must it get before a vitreous ceramic coating is done?", "1,250 degrees"),
    ("Why does the sea rise twice daily?", "pull of the Moon"),
    ("What keeps a naturally leavened loaf's culture alive?", "feed it daily"),
    ("Which reply to the king's pawn move fights from the flank?", "Sicilian Defence"),
]


@pytest.mark.parametrize("question,phrase", PARAPHRASES)
def test_a_paraphrase_finds_its_passage_first_by_vectors(
        dense_index: tuple[IndexVersion, Settings], question: str, phrase: str):
    version, settings = dense_index
    first_id, cosine = version.dense_search(load_embedder(settings).embed([question])[0], 1)[0]
    first = version.chunks([first_id])[0]
    assert phrase in first.text, (question, first.text[:80], cosine)
    # Few or no words in common: the match is by meaning, which BM25 could not make.
    stems = stemmer().stems
    asked = set(stems(query_terms(question)).values())
    held = set(stems(query_terms(first.text)).values())
    assert len(asked & held) <= 1, asked & held
