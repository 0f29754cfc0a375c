"""The /v1 routes as the official `openai` client sees them, against a real uvicorn server:
only cited sources with absolute links, max_tokens, usage from the model's tokenizer, model
names as collections. (test_openai_client.py runs `qa serve` with the real model.)"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.errors import QAError
from qa.index.embed import load_counter
from qa.index.tokens import WordPieceCounter
from qa.server import openai_api
from qa.server.api import create_app

from .conftest import FakeEmbedder, free_port, uvicorn_thread

QUESTION = "What do we know about Halley's Comet?"
SOURCE_LINE = re.compile(r"^\[(\d+)\] (.+) \((.+)\) <(\S+)>$")


def comet_corpora(root: Path) -> dict[str, Path]:
    comets, tides = root / "comets", root / "tides"
    comets.mkdir(parents=True)
    tides.mkdir()
    (comets / "comets.txt").write_text(
        "Comets\n\nHalley's Comet returns every 76 years. It was last seen from Earth in 1986. "
        "Halley's Comet will return in 2061. Edmond Halley predicted the return of the comet "
        "in 1705.\n\nOther comets\n\nComet Hale-Bopp was visible for 18 months in 1997.\n",
        encoding="utf-8")
    (comets / "tides.txt").write_text(
        "Tides\n\nTides are caused by the Moon. Spring tides happen at full and new moon.\n",
        encoding="utf-8")
    (tides / "moon.txt").write_text(
        "The Moon\n\nThe Moon raises two tidal bulges on Earth. Neap tides come at the "
        "quarter moons.\n", encoding="utf-8")
    return {"comets": comets, "tides": tides}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("v1")
    settings = Settings(collections=comet_corpora(root), min_confidence=0.0, reload_interval=0)
    config = uvicorn.Config(create_app(settings, FakeEmbedder), host="127.0.0.1",
                            port=free_port(), log_level="warning")
    with uvicorn_thread(config) as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="not-needed", max_retries=0)


@pytest.fixture(scope="module")
def counter() -> WordPieceCounter:
    return load_counter(Settings())


def ask(client: openai.OpenAI, **more) -> openai.types.chat.ChatCompletion:
    messages = more.pop("messages", [{"role": "user", "content": QUESTION}])
    return client.chat.completions.create(model=more.pop("model", "qa"), messages=messages,
                                          **more)


def sources(content: str) -> list[tuple[int, str, str, str]]:
    """The parsed lines of the Sources list."""
    _, found, listed = content.partition("\n\nSources:\n")
    assert found, content
    return [SOURCE_LINE.match(line).groups() for line in listed.splitlines()]  # type: ignore


def test_sources_list_only_cited_passages_with_absolute_links(client: openai.OpenAI,
                                                              server: str):
    done = ask(client)
    content = done.choices[0].message.content or ""
    body = content.partition("\n\nSources:\n")[0]
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", body)}
    citations = done.model_extra["citations"]
    assert len(citations) > len(markers)  # passages were retrieved that the answer never cites
    listed = sources(content)
    assert {int(n) for n, *_ in listed} == markers
    for n, title, where, url in listed:
        assert url.startswith(f"{server}/documents/")
        cite = next(c for c in citations if c["n"] == int(n))
        assert title == cite["title"] and where.startswith(cite["path"])
        page = httpx.get(url)  # the link opens the cited passage, highlighted
        assert page.status_code == 200 and "<mark" in page.text
        a, b = cite["highlight"][0]
        doc = httpx.get(f"{server}/api/documents/{cite['document_id']}").json()
        assert doc["text"][a:b] in html.unescape(page.text)


def test_no_sources_when_the_answer_cites_nothing(tmp_path: Path):
    # An abstention lists its closest passages in `citations`, but cites none of them.
    settings = Settings(collections=comet_corpora(tmp_path), min_confidence=0.99)
    with TestClient(create_app(settings, FakeEmbedder)) as c:
        body = c.post("/v1/chat/completions", json={"model": "qa", "messages": [
            {"role": "user", "content": "What colour is the Moon's cheese?"}]}).json()
    assert body["qa"]["abstained"] and body["citations"]
    assert "Sources:" not in body["choices"][0]["message"]["content"]


def test_usage_is_counted_with_the_model_tokenizer(client: openai.OpenAI,
                                                   counter: WordPieceCounter):
    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": QUESTION}]
    done = ask(client, messages=messages)
    content = done.choices[0].message.content or ""
    assert done.usage is not None
    assert done.usage.prompt_tokens == sum(counter.count(["Answer briefly.", QUESTION]))
    assert done.usage.completion_tokens == counter.count([content])[0]
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    # Word pieces, not words: "Halley's" alone is several.
    assert done.usage.completion_tokens > len(content.split())


def test_max_tokens_cuts_at_a_sentence_boundary(client: openai.OpenAI,
                                                counter: WordPieceCounter):
    full = ask(client)
    whole = full.choices[0].message.content or ""
    assert full.choices[0].finish_reason == "stop"
    whole_body = whole.partition("\n\nSources:\n")[0]
    assert len(re.findall(r"[.!?] \[\d+\]", whole_body)) >= 2  # several sentences to cut
    limit = counter.count([whole])[0] - 5
    cut = ask(client, max_tokens=limit)
    content = cut.choices[0].message.content or ""
    assert cut.choices[0].finish_reason == "length"
    assert 0 < counter.count([content])[0] <= limit
    assert cut.usage is not None and cut.usage.completion_tokens <= limit
    body = content.partition("\n\nSources:\n")[0]
    assert whole_body.startswith(body) and len(body) < len(whole_body)
    assert re.search(r"[.!?] \[\d+\]$", body)  # a whole sentence, its marker kept
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", body)}
    assert {int(n) for n, *_ in sources(content)} == cited  # the kept sentences' sources
    # The newer name works the same; the smaller of the two applies.
    same = ask(client, max_completion_tokens=limit, max_tokens=limit + 100)
    assert same.choices[0].message.content == content
    # Too small for any sentence: an empty message, still cut for length.
    tiny = ask(client, max_tokens=1)
    assert tiny.choices[0].message.content == "" and tiny.choices[0].finish_reason == "length"


def test_stream_honours_max_tokens_and_reports_usage(client: openai.OpenAI,
                                                     counter: WordPieceCounter):
    plain = ask(client, max_tokens=40)
    stream = ask(client, max_tokens=40, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == plain.choices[0].message.content
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["length"]
    assert finishing[0].model_extra["citations"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == counter.count([content])[0]
    # Without stream_options no usage chunk is sent, as OpenAI does.
    bare = list(ask(client, stream=True))
    assert all(c.choices for c in bare) and bare[-1].choices[0].finish_reason == "stop"


def test_models_and_collections(client: openai.OpenAI):
    assert [m.id for m in client.models.list()] == ["qa", "comets", "tides"]
    assert client.models.retrieve("tides").id == "tides"
    assert client.models.retrieve("qa").id == "qa"
    with pytest.raises(openai.NotFoundError, match="no model named 'gpt-4o'"):
        client.models.retrieve("gpt-4o")
    with pytest.raises(openai.NotFoundError, match="serves 'qa', 'comets', 'tides'"):
        ask(client, model="gpt-4o")
    tides = ask(client, model="tides",
                messages=[{"role": "user", "content": "What raises tidal bulges?"}])
    content = tides.choices[0].message.content or ""
    assert tides.model == "tides" and tides.model_extra["qa"]["collection"] == "tides"
    assert tides.model_extra["citations"][0]["path"] == "moon.txt"
    assert all("collection=tides" in url for *_, url in sources(content))


def test_filters_ride_in_extra_body(client: openai.OpenAI):
    done = ask(client, messages=[{"role": "user", "content": "What causes tides?"}],
               extra_body={"filters": {"paths": ["comets.txt"]}})
    assert {c["path"] for c in done.model_extra["citations"]} == {"comets.txt"}
    with pytest.raises(openai.UnprocessableEntityError, match="'..'"):
        ask(client, extra_body={"filters": {"paths": ["../tides"]}})


def test_usage_is_null_without_a_tokenizer(built: Settings, monkeypatch: pytest.MonkeyPatch):
    def no_tokenizer(settings: Settings) -> WordPieceCounter:
        raise QAError("model 'x' has no local tokenizer.json")

    monkeypatch.setattr(openai_api, "load_counter", no_tokenizer)
    with TestClient(create_app(built, FakeEmbedder)) as c:
        messages = [{"role": "user", "content": "Where do penguins live?"}]
        body = c.post("/v1/chat/completions", json={"model": "qa", "messages": messages}).json()
        assert body["usage"] is None and "[1]" in body["choices"][0]["message"]["content"]
        cut = c.post("/v1/chat/completions", json={"model": "qa", "messages": messages,
                                                   "max_tokens": 3}).json()
        assert cut["choices"][0]["finish_reason"] == "length" and cut["usage"] is None


@pytest.mark.parametrize("field,value", [("max_tokens", 0), ("max_tokens", -3),
                                         ("max_completion_tokens", 0)])
def test_bad_max_tokens_is_422(built: Settings, field: str, value: int):
    with TestClient(create_app(built, FakeEmbedder)) as c:
        r = c.post("/v1/chat/completions", json={
            "model": "qa", "messages": [{"role": "user", "content": "Tea?"}], field: value})
    assert r.status_code == 422 and field in r.json()["error"]["message"]
