"""Adding and removing documents over HTTP: who may, what is refused, where files land."""

from __future__ import annotations

import io
import os
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.index.ingest import document_id
from qa.server.api import create_app
from qa.server.intake import UploadError, safe_name

from .conftest import FakeEmbedder, make_docx, make_pdf

EVIL = "https://evil.example"
TOKEN = "upload-token-93"
MOON = b"# The Moon\n\nThe Moon orbits the Earth once every 27.3 days.\n"


def serve(settings: Settings, **changes) -> TestClient:
    update = {"reload_interval": 0, "min_confidence": 0.0, "admin_rate": 0.0, **changes}
    return TestClient(create_app(settings.model_copy(update=update), FakeEmbedder))


@pytest.fixture
def client(built: Settings) -> Iterator[TestClient]:
    with serve(built) as c:
        yield c


def settled(client: TestClient) -> dict:
    """The build status once no rebuild runs or waits."""
    deadline = time.monotonic() + 60
    while True:
        status = client.get("/api/index/status").json()
        waiting = getattr(client.app.state, "rebuilds", None)
        if status["state"] != "running" and not (waiting and waiting._waiting):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def upload(client: TestClient, name: str, data: bytes, headers: dict | None = None,
           **fields: str):
    return client.post("/api/documents", files=[("files", (name, data))], data=fields,
                       headers=headers or {})


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_upload_is_written_indexed_and_answered(client: TestClient, built: Settings):
    r = upload(client, "moon notes.md", MOON)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["files"] == [{"path": "moon notes.md", "document_id": document_id("moon notes.md"),
                              "replaced": False}]
    assert (built.corpus_dir / "moon notes.md").read_bytes() == MOON
    assert not list(built.corpus_dir.glob(".upload-*"))  # no temporary file left behind
    assert settled(client)["state"] == "succeeded"
    answer = client.post("/api/ask", json={"question": "How long does the Moon take to orbit "
                                                       "the Earth?"}).json()
    assert answer["citations"][0]["path"] == "moon notes.md"
    assert "27.3 days" in answer["answer"]

    # The same name again is refused unless it is to replace the file.
    assert upload(client, "moon notes.md", MOON).status_code == 409
    again = upload(client, "moon notes.md", MOON.replace(b"27.3", b"27.32"), replace="true")
    assert again.status_code == 202 and again.json()["files"][0]["replaced"]
    settled(client)
    assert b"27.32" in (built.corpus_dir / "moon notes.md").read_bytes()


def test_every_supported_type_is_accepted(client: TestClient, built: Settings):
    docs = [("a.txt", b"Plain text about otters.\n"),
            ("b.html", b"<html><body><p>Beavers build dams.</p></body></html>"),
            ("c.pdf", make_pdf(["Moles dig tunnels."])),
            ("d.docx", make_docx([("Voles eat grass.", None)]))]
    r = client.post("/api/documents", files=[("files", d) for d in docs])
    assert r.status_code == 202, r.text
    assert sorted(f["path"] for f in r.json()["files"]) == ["a.txt", "b.html", "c.pdf", "d.docx"]
    settled(client)
    paths = {d["path"] for d in client.get("/api/documents").json()}
    assert {"a.txt", "b.html", "c.pdf", "d.docx"} <= paths


@pytest.mark.parametrize("raw,name", [
    ("../../evil.txt", "evil.txt"),
    ("..\\..\\windows\\evil.txt", "evil.txt"),
    ("/etc/cron.d/evil.md", "evil.md"),
    ("sub/dir/notes.md", "notes.md"),
    (".hidden.md", "hidden.md"),
    ("...md.md", "md.md"),
    ("a\x00b\nc.txt", "a_b_c.txt"),
    ("re<port>|*?.HTML", "re_port____.html"),
    ("  spaced   out .md", "spaced out.md"),
    ("x" * 300 + ".txt", "x" * 116 + ".txt"),
])
def test_names_are_reduced_to_a_plain_name_in_the_corpus(raw: str, name: str):
    assert safe_name(raw) == name


@pytest.mark.parametrize("raw,status", [("evil.exe", 415), ("notes", 415), ("../..", 415),
                                        ("....txt", 415), ("", 415), ("archive.txt.zip", 415)])
def test_names_that_cannot_be_made_safe_are_refused(raw: str, status: int):
    with pytest.raises(UploadError) as err:
        safe_name(raw)
    assert err.value.status == status


def test_path_tricks_never_leave_the_corpus(client: TestClient, built: Settings, tmp_path: Path):
    before = files_under(tmp_path)
    for raw in ("../../escape.txt", "..%2F..%2Fescape.txt", "/tmp/escape.txt",
                "..\\escape.txt", "sub/../../escape.txt"):
        r = upload(client, raw, b"Escaping text about lynxes.\n")
        assert r.status_code in (202, 409), (raw, r.text)
    settled(client)
    added = {p for p in files_under(tmp_path) - before
             if not p.is_relative_to(built.index_dir)}
    corpus = built.corpus_dir.resolve()
    assert added and all(p.resolve().parent == corpus for p in added), added
    assert {p.name for p in added} == {"escape.txt", "2F.._2Fescape.txt"}


def test_a_symlink_or_folder_in_the_way_is_not_written_through(client: TestClient,
                                                               built: Settings, tmp_path: Path):
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched\n")
    (built.corpus_dir / "link.txt").symlink_to(outside)
    (built.corpus_dir / "folder.md").mkdir()
    for name in ("link.txt", "folder.md"):
        r = upload(client, name, b"Overwrite attempt about newts.\n", replace="true")
        assert r.status_code == 409 and "not a plain file" in r.json()["error"]["message"]
    assert outside.read_text() == "untouched\n"


@pytest.mark.parametrize("name,data,status,says", [
    ("tool.exe", b"MZ\x90\x00", 415, "not a supported file type"),
    ("fake.pdf", b"just text pretending to be a PDF", 415, "not a PDF"),
    ("fake.docx", b"PK but not really", 415, "not a Word"),
    ("zip.docx", b"", 422, "empty"),
    ("binary.txt", b"\x00\x01\x02" * 50, 415, "binary"),
    ("empty.html", b"<html><body><script>x()</script></body></html>", 422, "no text"),
    ("broken.pdf", b"%PDF-1.4\nnot really\n", 422, "cannot be read"),
])
def test_wrong_types_are_refused(client: TestClient, built: Settings, name: str, data: bytes,
                                 status: int, says: str):
    before = files_under(built.corpus_dir)
    r = upload(client, name, data)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]["message"]
    assert files_under(built.corpus_dir) == before
    assert client.get("/api/index/status").json()["state"] == "idle"


def test_a_docx_must_be_a_word_document(client: TestClient):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not word")
    r = upload(client, "other.docx", buf.getvalue())
    assert r.status_code == 415 and "not a Word" in r.json()["error"]["message"]


def test_oversized_files_are_refused(built: Settings):
    with serve(built, max_file_mb=0.001) as c:  # 1000 bytes
        r = upload(c, "big.txt", b"word " * 300)  # inside the body limit, over the file limit
        assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
        r = upload(c, "huge.txt", b"word " * 40_000)  # over the request body limit
        assert r.status_code == 413 and r.json()["error"]["type"] == "too_large"
        assert not (built.corpus_dir / "big.txt").exists()
        assert not (built.corpus_dir / "huge.txt").exists()
    # Other routes keep their small limit.
    with serve(built) as c:
        r = c.post("/api/ask", content=b"x" * 600_000, headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_only_callers_who_may_rebuild_may_upload_or_remove(built: Settings):
    doc = document_id("volcanoes.txt")
    with serve(built) as c:
        r = upload(c, "x.txt", b"Cross-site text.\n", headers={"origin": EVIL})
        assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
        r = c.delete(f"/api/documents/{doc}", headers={"origin": EVIL})
        assert r.status_code == 403
        r = c.post("/upload", files=[("files", ("x.txt", b"Form text.\n"))],
                   headers={"origin": EVIL, "sec-fetch-site": "cross-site"})
        assert r.status_code == 403
    assert not (built.corpus_dir / "x.txt").exists()
    assert (built.corpus_dir / "volcanoes.txt").exists()
    with serve(built, admin_token=TOKEN) as c:
        assert upload(c, "x.txt", b"Token text.\n").status_code == 403
        wrong = {"authorization": "Bearer nope"}
        assert upload(c, "x.txt", b"Token text.\n", headers=wrong).status_code == 403
        assert c.delete(f"/api/documents/{doc}").status_code == 403
        right = {"authorization": f"Bearer {TOKEN}"}
        assert upload(c, "x.txt", b"Token text about owls.\n", headers=right).status_code == 202
        settled(c)
    with serve(built, host="0.0.0.0", allowed_hosts=["testserver"]) as c:
        r = upload(c, "y.txt", b"Open network text.\n")  # no token set, not on loopback
        assert r.status_code == 403 and "QA_ADMIN_TOKEN" in r.json()["error"]["message"]
    assert not (built.corpus_dir / "y.txt").exists()


def test_remove_deletes_the_file_and_indexes_the_change(client: TestClient, built: Settings):
    doc = document_id("volcanoes.txt")
    assert client.delete("/api/documents/0123456789abcdef").status_code == 404
    r = client.delete(f"/api/documents/{doc}")
    assert r.status_code == 202 and r.json()["path"] == "volcanoes.txt"
    assert not (built.corpus_dir / "volcanoes.txt").exists()
    settled(client)
    assert doc not in {d["id"] for d in client.get("/api/documents").json()}
    assert client.get(f"/api/documents/{doc}").status_code == 404


def test_remove_never_follows_a_link_out_of_the_corpus(client: TestClient, built: Settings,
                                                       tmp_path: Path):
    outside = tmp_path / "keep.txt"
    outside.write_text("Lynxes hunt hares in the northern forests.\n")
    (built.corpus_dir / "linked.txt").symlink_to(outside)
    # A symlink to a file outside is skipped by the indexer, so it is not a document at all.
    settled(client)
    client.post("/api/index/rebuild", json={})
    settled(client)
    assert document_id("linked.txt") not in {d["id"] for d in client.get("/api/documents").json()}
    assert client.delete(f"/api/documents/{document_id('linked.txt')}").status_code == 404
    assert outside.exists()


def test_the_plain_forms_add_and_remove(client: TestClient, built: Settings):
    html = {"accept": "text/html"}
    r = client.post("/upload", files=[("files", ("../owls.md", b"# Owls\n\nOwls hunt at "
                                                              b"night.\n"))], headers=html)
    assert r.status_code == 200 and str(r.url).endswith("/documents?added=owls.md")
    page = BeautifulSoup(r.text, "lxml")
    assert "Added owls.md" in page.select_one("#library-added").text
    assert page.select_one("#library-build") is not None
    settled(client)
    doc = document_id("owls.md")
    shown = BeautifulSoup(client.get(f"/documents/{doc}", headers=html).text, "lxml")
    assert shown.select_one("#remove-form")["action"] == f"/documents/{doc}/delete"
    r = client.post(f"/documents/{doc}/delete", headers=html)
    assert r.status_code == 200 and "Removed owls.md" in r.text
    assert not (built.corpus_dir / "owls.md").exists()
    bad = client.post("/upload", files=[("files", ("owls.exe", b"MZ"))], headers=html)
    assert bad.status_code == 415
    assert "not a supported file type" in BeautifulSoup(bad.text, "lxml").select_one(
        "#library-error").text


def test_a_file_added_during_a_build_is_indexed_by_the_next(client: TestClient,
                                                            built: Settings):
    first = upload(client, "one.md", b"# One\n\nThe first file mentions herons.\n").json()
    second = upload(client, "two.md", b"# Two\n\nThe second file mentions egrets.\n").json()
    assert first["build_id"] is not None
    settled(client)
    paths = {d["path"] for d in client.get("/api/documents").json()}
    assert {"one.md", "two.md"} <= paths, (second, paths)
    assert os.listdir(built.corpus_dir).count("two.md") == 1
