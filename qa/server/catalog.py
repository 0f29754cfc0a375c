"""What the empty chat page shows: the collection's documents (title, size, when indexed) and
example questions drawn from the documents themselves, worked out once per index version."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from qa.config import Settings
from qa.errors import QAError
from qa.index.chunk import sentence_spans
from qa.index.index_dir import IndexDir
from qa.index.ingest import Document
from qa.index.store import MANIFEST, IndexVersion
from qa.search.engine import Engine
from qa.server.storage import SQLiteFile

log = logging.getLogger(__name__)

FILE_NAME = "catalog.sqlite3"
EXAMPLES = 4
MAX_ASKED = 16  # candidate questions tried against the index, per version
MAX_DOCS_READ = 40  # documents read for candidates
MAX_TEXT = 20_000  # characters of a document read for candidates
SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    doc_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    first_seen REAL NOT NULL,
    PRIMARY KEY (doc_id, hash)
);
"""


@dataclass
class DocEntry:
    """One indexed document as the page lists it."""

    id: str
    title: str
    path: str
    chars: int
    chunks: int
    bytes: int | None
    indexed_at: float | None  # when this content of the document was first indexed


@dataclass
class Catalog:
    """The documents of one index version, and its example questions (None until worked out)."""

    version: str
    documents: list[DocEntry]
    examples: list[str] | None = None


def _built_at(manifest: dict[str, object]) -> float | None:
    value = manifest.get("built_at")
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


def _manifests(index_dir: Path) -> Iterator[dict[str, object]]:
    """The manifests of the versions on disk, oldest first; unreadable ones left out."""
    versions = IndexDir(index_dir).versions
    if not versions.is_dir():
        return
    for folder in sorted(p for p in versions.iterdir() if not p.name.startswith(".")):
        try:
            value = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(value, dict):
            yield value


class Catalogs:
    """The catalog of the served version, made on first use; examples are worked out in a
    background thread (they ask the index a few questions), the documents at once."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.seen = SQLiteFile(settings.index_dir / FILE_NAME, SCHEMA)
        self._lock = threading.Lock()
        self._current: Catalog | None = None
        self._working: str | None = None

    def get(self, engine: Engine) -> Catalog:
        """The catalog of the version the engine serves now."""
        with engine.lease() as version:
            with self._lock:
                current = self._current
                if current is not None and current.version == version.name:
                    return current
            catalog = Catalog(version.name, self._documents(version))
        with self._lock:
            if self._current is None or self._current.version != catalog.version:
                self._current = catalog
            catalog = self._current
            if catalog.examples is None and self._working != catalog.version:
                self._working = catalog.version
                threading.Thread(target=self._examples, args=(engine, catalog), daemon=True,
                                 name=f"examples-{catalog.version}").start()
        return catalog

    def _documents(self, version: IndexVersion) -> list[DocEntry]:
        first = self._first_seen(version)
        corpus = Path(os.path.realpath(self.settings.corpus_dir))
        out = []
        for row in version.documents():
            path = corpus / row["path"]
            try:
                size: int | None = path.stat().st_size if path.is_relative_to(corpus) else None
            except OSError:
                size = None
            out.append(DocEntry(row["id"], row["title"], row["path"], row["chars"],
                                row["chunks"], size, first.get(row["id"])))
        return out

    def _first_seen(self, version: IndexVersion) -> dict[str, float]:
        """doc id -> when its current content was first indexed, as far as the versions on
        disk (and those seen before) tell."""
        try:
            with self.seen.write() as db:
                for manifest in [*_manifests(self.settings.index_dir), version.manifest]:
                    at = _built_at(manifest)
                    docs = manifest.get("documents")
                    if at is None or not isinstance(docs, dict):
                        continue
                    db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)",
                                   [(d, v.get("hash", ""), at) for d, v in docs.items()
                                    if isinstance(v, dict)])
                wanted = {d: v.get("hash", "") for d, v in
                          version.manifest.get("documents", {}).items()}
                rows = db.execute("SELECT doc_id, hash, first_seen FROM seen").fetchall()
        except (OSError, sqlite3.Error) as exc:
            log.warning("cannot record when documents were indexed: %s", exc)
            return {}
        return {d: t for d, h, t in rows if wanted.get(d) == h}

    def _examples(self, engine: Engine, catalog: Catalog) -> None:
        try:
            found = example_questions(engine)
        except QAError as exc:
            log.warning("no example questions: %s", exc)
            found = []
        except Exception:
            log.exception("example questions failed")
            found = []
        with self._lock:
            catalog.examples = found
            self._working = None


# --- example questions ------------------------------------------------------------------------

WH = re.compile(r"(what|why|how|when|where|who|which)\b", re.IGNORECASE)
AUX = frozenset("is are was were do does did can could should will would has have had comes "
                "happens happened matters".split())
NAME = re.compile(r"\b[A-Z][\w’'–-]*[a-z0-9][\w’'–-]*(?: (?:of |for |on )?[A-Z][\w’'–-]+){1,4}")
# Names ending in one of these take "the": "the Digital Partnership Council".
INSTITUTIONS = frozenset("""
act agency agreement alliance association bank card centre center commission committee company
consortium convention council court department foundation fund group initiative institute
ministry office organisation organization partnership process programme program project
summit treaty union university wallet
""".split())
YEAR = re.compile(r"\b(?:(?:January|February|March|April|May|June|July|August|September|"
                  r"October|November|December)\s+)?(?:1[89]|20)\d\d\b")


def _lower_first(text: str) -> str:
    """A heading as it reads inside a sentence: 'Submarine cables' -> 'submarine cables'."""
    first, _, rest = text.partition(" ")
    if first[:1].isupper() and first[1:].islower():
        first = first.lower()
    return f"{first} {rest}".strip()


def candidates(doc: Document) -> dict[str, list[str]]:
    """Questions a document suggests, by kind: its headings that are questions, the names it
    repeats, the dates it mentions once, and its other headings."""
    out: dict[str, list[str]] = {"wh": [], "name": [], "date": [], "topic": []}
    for h in doc.headings:
        title = h.title.strip().rstrip(".:;")
        if not title or (h.title == doc.title and h.level == 1) or len(title.split()) > 10:
            continue
        if h.title.rstrip().endswith("?"):
            out["wh"].append(h.title.strip())
        elif WH.match(title) and title.split()[1:2] and title.split()[1].lower() in AUX:
            out["wh"].append(title + "?")  # "What comes next"; not "How it works"
        elif len(title.split()) <= 6 and not WH.match(title):  # not "What about how it works?"
            out["topic"].append(f"What about {_lower_first(title)}?")
    text = doc.text[:MAX_TEXT]
    heads = {h.title for h in doc.headings}
    names: Counter[str] = Counter()
    with_the: Counter[str] = Counter()
    for m in NAME.finditer(text):
        before = text[max(m.start() - 4, 0):m.start()]
        name = m.group(0)
        if name.startswith("The "):
            name, before = name[4:], "the "
        elif before.rstrip(" ")[-1:] in ("", ".", "!", "?", "\n"):
            continue  # a sentence's first word is capitalised anyway
        if name in heads or "'s" in name or "’s" in name or " " not in name:
            continue
        names[name] += 1
        with_the[name] += before.lower().endswith("the ")
    for name, _ in names.most_common(6):
        if name.lower() in doc.title.lower():
            continue
        last = name.rsplit(" ", 1)[-1].lower()
        article = "the " if with_the[name] or last in INSTITUTIONS else ""
        out["name"].append(f"What is {article}{name}?")
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    dates: Counter[str] = Counter(d for s in sentences for d in set(YEAR.findall(s)))
    out["date"] = [f"What happened in {d}?" for d, n in dates.items() if n == 1][:4]
    return out


def example_questions(engine: Engine, limit: int = EXAMPLES) -> list[str]:
    """A few questions the corpus answers, drawn from its documents: candidates from headings,
    names and dates are asked, and those answered from the document they came from are kept,
    one per document and kind where there is a choice."""
    pool: list[tuple[str, str, str]] = []  # (kind, question, document id)
    with engine.lease() as version:
        rows = version.documents()[:MAX_DOCS_READ]
        by_kind: dict[str, list[tuple[str, str]]] = {}
        for row in rows:
            for kind, questions in candidates(version.document(row["id"])).items():
                by_kind.setdefault(kind, []).extend((q, row["id"]) for q in questions)
    # Round robin over kinds and documents, so a long document does not fill the list.
    for i in range(MAX_ASKED):
        for kind in ("wh", "name", "date", "topic"):
            items = by_kind.get(kind, [])
            if i < len(items) and len(pool) < MAX_ASKED:
                pool.append((kind, *items[i]))
    kept: list[tuple[float, str, str, str]] = []
    started = time.monotonic()
    for kind, question, doc_id in pool:
        if time.monotonic() - started > 10:
            break
        answer = engine.ask(question)
        if answer.abstained or not answer.citations or answer.citations[0].document_id != doc_id:
            continue
        kept.append((answer.confidence, kind, question, doc_id))
    kept.sort(key=lambda k: -k[0])
    out: list[str] = []
    kinds: set[str] = set()
    docs: set[str] = set()
    # First a question of a new kind from a new document, then of a new kind, then the surest.
    for strict in (2, 1, 0):
        for _, kind, question, doc_id in kept:
            if len(out) >= limit or question in out:
                continue
            if (strict >= 1 and kind in kinds) or (strict >= 2 and doc_id in docs):
                continue
            out.append(question)
            kinds.add(kind)
            docs.add(doc_id)
    return out
