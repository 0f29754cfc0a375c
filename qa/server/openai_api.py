"""OpenAI-compatible chat completions, so existing clients can ask the corpus unchanged.

The model name picks the collection ("qa" is the default one). The answer text keeps its `[n]`
markers and ends with a "Sources:" list of the passages it cites, each with an absolute link, so
a plain client still sees every citation; the structured `citations` travel in the response
(and in the last chunk of a stream, before `[DONE]`). `max_tokens` cuts the content at a
sentence boundary, and `usage` counts word pieces of the embedding model's own tokenizer (it is
null if that tokenizer cannot be loaded).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, Request

from qa.errors import BadQuestionError, QAError
from qa.index.embed import load_counter
from qa.index.tokens import WordPieceCounter
from qa.search.answer import Answer, Citation
from qa.search.engine import Engine
from qa.search.filters import Filter
from qa.search.followup import ask_in_conversation
from qa.server.collections import Collection, collections_of
from qa.server.limits import stream, work
from qa.server.observability import note
from qa.server.schemas import (
    MAX_HISTORY_TURNS,
    MAX_MESSAGE_CHARS,
    ChatChoice,
    ChatChoiceMessage,
    ChatCompletion,
    ChatCompletionRequest,
    CitationOut,
    ErrorResponse,
    ModelCard,
    ModelList,
    QAExtra,
    Usage,
    source_url,
)

log = logging.getLogger(__name__)

STARTED = int(time.time())
_MARKER = re.compile(r"\[(\d{1,3})\]")

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 413, 422, 429, 503)}
router = APIRouter(prefix="/v1", tags=["openai"], responses=ERRORS)


def cited(text: str, answer: Answer) -> list[Citation]:
    """The answer's citations that `text` refers to with a marker, in citation order."""
    used = {int(n) for n in _MARKER.findall(text)}
    return [c for c in answer.citations if c.n in used]


def sources_text(citations: Sequence[Citation], base_url: str,
                 collection: str | None = None) -> str:
    """The citations as plain text lines with absolute links, for clients that only show
    message content."""
    lines = []
    for c in citations:
        where = [c.path]
        if c.page is not None:
            where.append(f"page {c.page}")
        if c.section:
            where.append(f"section {c.section}")
        url = base_url.rstrip("/") + source_url(c, collection)
        lines.append(f"[{c.n}] {c.title} ({', '.join(where)}) <{url}>")
    return "Sources:\n" + "\n".join(lines) if lines else ""


def answer_text(answer: Answer) -> str:
    """The message without its sources: the short answer if there is one, then the supporting
    sentences with their markers (or why nothing was found)."""
    text = answer.text
    if answer.answer_span is not None:
        text = f"{answer.answer_span.text} [{answer.answer_span.n}]\n\n{text}"
    if answer.reason:
        text = f"{text}\n\n{answer.reason}"
    return text


def message_content(answer: Answer, base_url: str, collection: str | None = None,
                    text: str | None = None) -> str:
    """The assistant message: `text` (the whole answer text by default) and the sources it
    cites."""
    text = answer_text(answer) if text is None else text
    sources = sources_text(cited(text, answer), base_url, collection)
    return f"{text}\n\n{sources}" if sources and text else text


# The end of a sentence, with the markers that follow it ("... in 2061. [1]"), or of a line.
_END = re.compile(r"(?:[.!?]+[\"')]*(?:\s*\[\d{1,3}\])*|\n)(?=\s|$)")


def _pieces(content: str) -> list[str]:
    """The content in runs that each end at a sentence or line boundary, a sentence's
    markers kept with it; joined, they are the content again."""
    out, pos = [], 0
    for m in _END.finditer(content):
        if m.end() > pos:
            out.append(content[pos:m.end()])
            pos = m.end()
    if pos < len(content):
        out.append(content[pos:])
    return out


def fit(answer: Answer, base_url: str, collection: str | None, limit: int | None,
        count: Callable[[str], int]) -> tuple[str, bool]:
    """The message cut to at most `limit` tokens at a sentence boundary, and whether it was
    cut. The sources of the kept sentences stay if they fit too; if not even the first
    sentence fits, the message is empty."""
    full = message_content(answer, base_url, collection)
    if limit is None or count(full) <= limit:
        return full, False
    pieces = _pieces(answer_text(answer))
    prefixes = ["".join(pieces[:i]).rstrip() for i in range(len(pieces), 0, -1)]
    for text in prefixes:  # longest first, with its sources
        content = message_content(answer, base_url, collection, text)
        if count(content) <= limit:
            return content, True
    for text in prefixes:  # the sources alone are too long: the sentences without them
        if count(text) <= limit:
            return text, True
    return "", True


_counter_lock = threading.Lock()


def token_counter(request: Request) -> WordPieceCounter | None:
    """The embedding model's tokenizer, loaded once; None if the model has none locally."""
    state = request.app.state
    with _counter_lock:
        if not hasattr(state, "token_counter"):
            try:
                state.token_counter = load_counter(state.settings)
            except (QAError, OSError, ValueError, RuntimeError) as exc:
                log.warning("no tokenizer to count tokens with; usage is left out: %s", exc)
                state.token_counter = None
        counter: WordPieceCounter | None = state.token_counter
    return counter


def rough_count(text: str) -> int:
    """Words and punctuation marks: a lower bound of word pieces, for cutting without a
    tokenizer (never reported as usage)."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def conversation(body: ChatCompletionRequest) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last user message) and the earlier turns used as history."""
    last = body.messages[-1]
    if last.role != "user":
        raise BadQuestionError("the last message must be the user's question")
    history: list[tuple[str, str]] = [
        (m.role, m.text()[:MAX_MESSAGE_CHARS])
        for m in body.messages[:-1] if m.role in ("user", "assistant")]
    return last.text(), history[-MAX_HISTORY_TURNS:]


def _card(name: str) -> ModelCard:
    return ModelCard(id=name, created=STARTED, owned_by="qa")


@router.get("/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    """The models this server offers: one per collection, and "qa" for the default one."""
    return ModelList(data=[_card(n) for n in collections_of(request).model_names()])


@router.get("/models/{model_id}", response_model=ModelCard)
async def get_model(request: Request,
                    model_id: Annotated[str, Path(max_length=200)]) -> ModelCard:
    """One model (collection) by name; 404 for a name this server does not serve."""
    collections_of(request).model(model_id)
    return _card(model_id)


@dataclass
class Reply:
    """What a completion says, worked out in the worker pool (counting tokens is CPU work)."""

    answer: Answer
    content: str
    truncated: bool
    usage: Usage | None


def _reply(engine: Engine, question: str, history: list[tuple[str, str]], k: int | None,
           where: Filter | None, base_url: str, served: Collection, limit: int | None,
           counter: WordPieceCounter | None, prompt: list[str]) -> Reply:
    answer = ask_in_conversation(engine, question, history, k, where)
    count = (lambda t: counter.count([t])[0]) if counter is not None else rough_count
    content, truncated = fit(answer, base_url, served.link_name, limit, count)
    usage = None
    if counter is not None:
        prompt_tokens = sum(counter.count(prompt)) if prompt else 0
        completion_tokens = count(content)
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                      total_tokens=prompt_tokens + completion_tokens)
    return Reply(answer, content, truncated, usage)


@router.post("/chat/completions", response_model=ChatCompletion,
             responses={200: {"content": {"text/event-stream": {}}}})
async def chat_completions(body: ChatCompletionRequest, request: Request) -> object:
    """Answer the last user message from the collection `model` names; `stream: true` sends
    server-sent events."""
    served = collections_of(request).model(body.model)
    question, history = conversation(body)
    limits = [n for n in (body.max_tokens, body.max_completion_tokens) if n is not None]
    where = Filter.of(body.filters.documents, body.filters.paths) if body.filters else None
    reply = await work(request, _reply, served.engine, question, history, body.k, where,
                       str(request.base_url), served, min(limits) if limits else None,
                       token_counter(request), [m.text() for m in body.messages])
    answer = reply.answer
    note(request, abstained=answer.abstained, index_version=answer.index_version)
    created = int(time.time())
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    citations = [CitationOut.of(c, served.link_name) for c in answer.citations]
    extra = QAExtra(question=answer.question, query=answer.query, confidence=answer.confidence,
                    abstained=answer.abstained, index_version=answer.index_version,
                    collection=served.name)
    finish = "length" if reply.truncated else "stop"
    if body.stream:
        usage = reply.usage if body.wants_stream_usage() else None
        return stream(request, _stream(cid, created, body.model, reply.content, finish,
                                       citations, extra, usage),
                      headers={"cache-control": "no-cache"})
    return ChatCompletion(
        id=cid, created=created, model=body.model,
        choices=[ChatChoice(message=ChatChoiceMessage(content=reply.content),
                            finish_reason=finish)],
        usage=reply.usage, citations=citations, qa=extra)


async def _stream(cid: str, created: int, model: str, content: str, finish: str,
                  citations: list[CitationOut], extra: QAExtra,
                  usage: Usage | None) -> AsyncIterator[str]:
    """The answer as chat.completion.chunk events (the data of each), then `[DONE]`."""

    def event(choices: list[dict[str, object]], **more: object) -> str:
        chunk = {"id": cid, "object": "chat.completion.chunk", "created": created,
                 "model": model, "choices": choices, **more}
        return json.dumps(chunk, ensure_ascii=False)

    def delta(content: dict[str, object], reason: str | None = None) -> list[dict[str, object]]:
        return [{"index": 0, "delta": content, "finish_reason": reason}]

    yield event(delta({"role": "assistant", "content": ""}))
    for piece in _pieces(content):
        yield event(delta({"content": piece}))
    yield event(delta({}, finish), citations=[c.model_dump(mode="json") for c in citations],
                qa=extra.model_dump(mode="json"))
    if usage is not None:  # as OpenAI sends it for stream_options.include_usage
        yield event([], usage=usage.model_dump())
    yield "[DONE]"
