"""Evaluation datasets: BEIR folders and SQuAD-style article sets, read with file:line errors."""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import DatasetError
from qa.index.clean import clean_text


@dataclass
class DatasetDoc:
    """One document of a dataset: a title and paragraphs of text."""

    id: str
    title: str
    paragraphs: list[str]


@dataclass
class DatasetQuery:
    """A question, with what counts as finding it: relevant documents, or a gold passage."""

    id: str
    text: str
    relevant: dict[str, int] = field(default_factory=dict)  # document id -> grade
    answers: list[str] = field(default_factory=list)
    gold_doc: str | None = None  # SQuAD: the article holding the gold paragraph
    gold_text: str | None = None  # SQuAD: the gold paragraph, to locate in the article


@dataclass
class Dataset:
    """Documents plus questions; `kind` is 'beir' (graded documents) or 'squad' (answers)."""

    name: str
    kind: str
    docs: list[DatasetDoc]
    queries: list[DatasetQuery]


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; DatasetError names the bad line."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}:{n}: expected a JSON object")
            for key in required:
                if key not in obj:
                    raise DatasetError(f"{path}:{n}: missing field {key!r}")
            if not isinstance(obj["_id"], (str, int)):
                raise DatasetError(f"{path}:{n}: '_id' must be a string")
            obj["_id"] = str(obj["_id"])
            rows.append((n, obj))
    if not rows:
        raise DatasetError(f"{path}: no records")
    return rows


def _unique_ids(path: Path, rows: list[tuple[int, dict[str, Any]]]) -> None:
    seen: dict[str, int] = {}
    for n, obj in rows:
        if obj["_id"] in seen:
            raise DatasetError(f"{path}:{n}: duplicate id {obj['_id']!r} "
                               f"(first on line {seen[obj['_id']]})")
        seen[obj["_id"]] = n


def read_qrels(path: Path, query_ids: set[str], doc_ids: set[str]) -> dict[str, dict[str, int]]:
    """query id -> {document id: grade} from a BEIR qrels TSV with a header line."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    out: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if n == 1 and cols and cols[0].strip().lower() in {"query-id", "query_id", "qid"}:
                continue
            if len(cols) != 3:
                raise DatasetError(f"{path}:{n}: expected 3 tab-separated columns "
                                   f"(query-id, corpus-id, score), found {len(cols)}")
            qid, did, grade = (c.strip() for c in cols)
            try:
                score = int(float(grade))
            except ValueError as exc:
                raise DatasetError(f"{path}:{n}: score {grade!r} is not a number") from exc
            if qid not in query_ids:
                raise DatasetError(f"{path}:{n}: query id {qid!r} is not in queries.jsonl")
            if did not in doc_ids:
                raise DatasetError(f"{path}:{n}: corpus id {did!r} is not in corpus.jsonl")
            if score > 0:
                out.setdefault(qid, {})[did] = score
    if not out:
        raise DatasetError(f"{path}: no positive judgements")
    return out


def load_dataset(folder: Path, split: str = "test") -> Dataset:
    """A BEIR folder (corpus, queries, qrels/<split>.tsv) or a SQuAD-style one (articles.jsonl)."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder")
    if (folder / "articles.jsonl").is_file():
        return _load_squad(folder)
    if not (folder / "corpus.jsonl").is_file():
        raise DatasetError(f"{folder}: not a dataset (no corpus.jsonl or articles.jsonl)")
    corpus_path = folder / "corpus.jsonl"
    rows = _read_jsonl(corpus_path, ("_id", "text"))
    _unique_ids(corpus_path, rows)
    docs = [DatasetDoc(o["_id"], str(o.get("title") or ""), [str(o["text"])]) for _, o in rows]
    q_path = folder / "queries.jsonl"
    q_rows = _read_jsonl(q_path, ("_id", "text"))
    _unique_ids(q_path, q_rows)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise DatasetError(f"{qrels_path}: file not found"
                           + (f" (splits here: {', '.join(have)})" if have else ""))
    qrels = read_qrels(qrels_path, {o["_id"] for _, o in q_rows}, {d.id for d in docs})
    queries = [DatasetQuery(o["_id"], str(o["text"]), relevant=qrels[o["_id"]])
               for _, o in q_rows if o["_id"] in qrels]
    return Dataset(folder.name, "beir", docs, queries)


def _load_squad(folder: Path) -> Dataset:
    """Articles as documents; each question carries its answers and its gold paragraph."""
    a_path = folder / "articles.jsonl"
    rows = _read_jsonl(a_path, ("_id", "text"))
    _unique_ids(a_path, rows)
    docs = [DatasetDoc(o["_id"], str(o.get("title") or ""),
                       [p for p in str(o["text"]).split("\n\n") if p.strip()]) for _, o in rows]
    by_title = {d.title: d for d in docs}
    paragraphs: dict[str, tuple[str, str]] = {}  # paragraph id -> (article id, text)
    c_path = folder / "corpus.jsonl"
    if c_path.is_file():
        for n, o in _read_jsonl(c_path, ("_id", "text")):
            text = str(o["text"])
            art = by_title.get(str(o.get("title") or ""))
            if art is None or text not in "\n\n".join(art.paragraphs):
                art = next((d for d in docs if text in "\n\n".join(d.paragraphs)), None)
            if art is None:
                raise DatasetError(f"{c_path}:{n}: paragraph {o['_id']!r} occurs in no article")
            paragraphs[o["_id"]] = (art.id, text)
    q_path = folder / "queries.jsonl"
    q_rows = _read_jsonl(q_path, ("_id", "text"))
    _unique_ids(q_path, q_rows)
    queries = []
    for n, o in q_rows:
        meta = o.get("metadata") or {}
        answers = meta.get("answers")
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise DatasetError(f"{q_path}:{n}: metadata.answers must be a list of strings")
        gold = meta.get("gold_doc")
        if not isinstance(gold, str):
            raise DatasetError(f"{q_path}:{n}: metadata.gold_doc is missing")
        if gold not in paragraphs:
            raise DatasetError(f"{q_path}:{n}: gold_doc {gold!r} is not in {c_path.name}")
        if meta.get("is_impossible"):
            continue
        art_id, text = paragraphs[gold]
        queries.append(DatasetQuery(o["_id"], str(o["text"]), relevant={art_id: 1},
                                    answers=[a for a in answers if a.strip()],
                                    gold_doc=art_id, gold_text=text))
    return Dataset(folder.name, "squad", docs, queries)


def document_html(doc: DatasetDoc) -> bytes:
    """A dataset document as a small HTML file: the title stays out of the body text."""
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in doc.paragraphs)
    title = html.escape(doc.title or doc.id)
    return f"<html><head><title>{title}</title></head><body>\n{body}</body></html>\n".encode()


def write_corpus(docs: list[DatasetDoc], folder: Path) -> dict[str, str]:
    """Write documents as files for the indexer (only those that changed); path -> dataset id."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for doc in docs:
        # File names from a hash of the id: ids may hold any character.
        name = hashlib.sha1(doc.id.encode("utf-8")).hexdigest()[:20] + ".html"
        data = document_html(doc)
        path = folder / name
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        paths[name] = doc.id
    wanted = set(paths)
    for p in folder.glob("*.html"):
        if p.name not in wanted:
            p.unlink()
    return paths


def clean_paragraph(text: str) -> str:
    """A paragraph normalised the way the indexer normalises document text."""
    return clean_text(text)
