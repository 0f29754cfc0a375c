"""OpenAI-compatible chat completions, so existing clients can ask the corpus unchanged.

The answer text keeps its `[n]` markers and ends with a "Sources:" list, so a plain client still
sees every citation; the structured `citations` travel in the response (and in the last chunk of a
stream, before `[DONE]`).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator

from fastapi import APIRouter, Request

from qa.errors import BadQuestionError, NotFoundError
from qa.search.answer import Answer
from qa.search.followup import ask_in_conversation
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
)

MODEL = "qa"
STARTED = int(time.time())

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 413, 422, 429, 503)}
router = APIRouter(prefix="/v1", tags=["openai"], responses=ERRORS)


def sources_text(answer: Answer) -> str:
    """The citations as plain text lines, for clients that only show message content."""
    lines = []
    for c in answer.citations:
        where = [c.path]
        if c.page is not None:
            where.append(f"page {c.page}")
        if c.section:
            where.append(f"section {c.section}")
        span = c.highlight[0] if c.highlight else (c.start, c.end)
        where.append(f"chars {span[0]}-{span[1]}")
        lines.append(f"[{c.n}] {c.title} ({', '.join(where)})")
    return "Sources:\n" + "\n".join(lines) if lines else ""


def message_content(answer: Answer) -> str:
    """The assistant message: the short answer if there is one, the supporting sentences with
    their markers (or why nothing was found), then the sources."""
    sources = sources_text(answer)
    text = answer.text
    if answer.answer_span is not None:
        text = f"{answer.answer_span.text} [{answer.answer_span.n}]\n\n{text}"
    if answer.reason:
        text = f"{text}\n\n{answer.reason}"
    return f"{text}\n\n{sources}" if sources else text


def conversation(body: ChatCompletionRequest) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last user message) and the earlier turns used as history."""
    if body.model != MODEL:
        raise NotFoundError(f"no model named {body.model[:100]!r}; this server serves {MODEL!r}")
    last = body.messages[-1]
    if last.role != "user":
        raise BadQuestionError("the last message must be the user's question")
    history: list[tuple[str, str]] = [
        (m.role, m.text()[:MAX_MESSAGE_CHARS])
        for m in body.messages[:-1] if m.role in ("user", "assistant")]
    return last.text(), history[-MAX_HISTORY_TURNS:]


def _words(text: str) -> int:
    return len(re.findall(r"\S+", text))


@router.get("/models", response_model=ModelList)
async def list_models() -> ModelList:
    """The one model this server offers."""
    return ModelList(data=[ModelCard(id=MODEL, created=STARTED, owned_by="qa")])


@router.post("/chat/completions", response_model=ChatCompletion,
             responses={200: {"content": {"text/event-stream": {}}}})
async def chat_completions(body: ChatCompletionRequest, request: Request) -> object:
    """Answer the last user message; `stream: true` sends server-sent events."""
    question, history = conversation(body)
    answer = await work(request, ask_in_conversation, request.app.state.engine, question,
                        history, body.k)
    note(request, abstained=answer.abstained, index_version=answer.index_version)
    content = message_content(answer)
    created = int(time.time())
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    citations = [CitationOut.of(c) for c in answer.citations]
    extra = QAExtra(question=answer.question, query=answer.query, confidence=answer.confidence,
                    abstained=answer.abstained, index_version=answer.index_version)
    if body.stream:
        return stream(request, _stream(cid, created, content, citations, extra),
                      headers={"cache-control": "no-cache"})
    prompt = sum(_words(m.text()) for m in body.messages)
    completion = _words(content)
    return ChatCompletion(
        id=cid, created=created, model=MODEL,
        choices=[ChatChoice(message=ChatChoiceMessage(content=content))],
        usage=Usage(prompt_tokens=prompt, completion_tokens=completion,
                    total_tokens=prompt + completion),
        citations=citations, qa=extra)


def _pieces(content: str) -> Iterator[str]:
    """The content in small runs (sentences and lines), as a generator would emit them."""
    yield from (p for p in re.split(r"(?<=[.!?\n])(?=\s)", content) if p)


async def _stream(cid: str, created: int, content: str, citations: list[CitationOut],
                  extra: QAExtra) -> AsyncIterator[str]:
    """The answer as chat.completion.chunk events (the data of each), then `[DONE]`."""

    def event(delta: dict[str, object], finish: str | None = None, **more: object) -> str:
        chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
        return json.dumps(chunk, ensure_ascii=False)

    yield event({"role": "assistant", "content": ""})
    for piece in _pieces(content):
        yield event({"content": piece})
    yield event({}, "stop", citations=[c.model_dump(mode="json") for c in citations],
                qa=extra.model_dump(mode="json"))
    yield "[DONE]"
