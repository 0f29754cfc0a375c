"""Conversations over HTTP: the chat pages (a plain form posts and is redirected to the
conversation's own URL) and the JSON routes the page's script uses, feedback included."""

from __future__ import annotations

import logging
import re
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qa.errors import AccessDeniedError, BadQuestionError, NotFoundError
from qa.server.collections import collection_of
from qa.server.conversations import (
    Conversation,
    ConversationStore,
    new_owner_token,
    owner_key,
    title_of,
)
from qa.server.feedback import MAX_COMMENT, FeedbackStore, turn_of
from qa.server.limits import work
from qa.server.markdown import conversation_markdown
from qa.server.observability import note
from qa.server.pages import API_ERRORS, templates
from qa.server.schemas import MAX_HISTORY_TURNS, MAX_K, MIN_K, AskResponse, Incoming
from qa.server.turns import answer_turn

log = logging.getLogger(__name__)

COOKIE = "qa_client"
COOKIE_SECONDS = 365 * 24 * 3600
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")


class ChatRequest(Incoming):
    """A question in a conversation: a new one when `conversation_id` is empty."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(strict=True)
    conversation_id: str | None = Field(None, max_length=64)
    collection: str | None = Field(None, max_length=64,
                                   description="The collection to ask; the default if empty.")
    k: int | None = Field(None, ge=MIN_K, le=MAX_K, strict=True)


class TurnOut(AskResponse):
    """One turn of a conversation: its number and the feedback given on it."""

    n: int
    rating: Literal["up", "down"] | None = None


class ChatResponse(BaseModel):
    """The answer, and the conversation that now holds it (a copy, if someone else's)."""

    conversation_id: str
    url: str
    title: str
    forked: bool
    turn: TurnOut


class ConversationSummaryOut(BaseModel):
    id: str
    title: str
    url: str
    created: float
    updated: float
    turns: int


class ConversationOut(BaseModel):
    """A conversation with its turns; `owned` says whether this browser started it."""

    id: str
    title: str
    url: str
    owned: bool
    created: float
    updated: float
    turns: list[TurnOut]


class FeedbackIn(Incoming):
    model_config = ConfigDict(extra="forbid")

    rating: Literal["up", "down"]
    comment: str = Field("", max_length=MAX_COMMENT)


class FeedbackOut(BaseModel):
    conversation_id: str
    n: int
    rating: Literal["up", "down"]
    comment: str


# --- who is asking ------------------------------------------------------------------------------


def client_token(request: Request) -> tuple[str, bool]:
    """This browser's secret from its cookie, or a new one (True: set the cookie)."""
    token = request.cookies.get(COOKIE, "")
    return (token, False) if TOKEN.fullmatch(token) else (new_owner_token(), True)


def remember(request: Request, response: Response, token: str, new: bool) -> None:
    """Give the browser its secret, if it is new."""
    if new:
        response.set_cookie(COOKIE, token, max_age=COOKIE_SECONDS, httponly=True,
                            samesite="lax", secure=request.url.scheme == "https", path="/")


def owner_of(request: Request) -> str | None:
    """The key of this browser's conversations, if it has a cookie."""
    token = request.cookies.get(COOKIE, "")
    return owner_key(token) if TOKEN.fullmatch(token) else None


def conversations_of(request: Request) -> ConversationStore:
    store: ConversationStore = request.app.state.conversations
    return store


def feedback_of(request: Request) -> FeedbackStore:
    store: FeedbackStore = request.app.state.feedback
    return store


def turns_of(conv: Conversation) -> list[tuple[int, AskResponse]]:
    """The stored turns with their numbers; one that no longer reads is left out."""
    out = []
    for n, data in enumerate(conv.turns):
        try:
            out.append((n, AskResponse.model_validate_json(data)))
        except ValidationError:
            log.warning("turn %d of a conversation is unreadable; not shown", n)
    return out


def _keep(store: ConversationStore, conv: Conversation | None, owner: str, question: str,
          turn: AskResponse) -> tuple[str, int, bool, str]:
    """Store the turn: (conversation id, turn number, whether copied, title)."""
    data = turn.model_dump_json()
    if conv is None:
        return store.create(owner, question, data), 0, False, title_of(question)
    cid, forked = conv.id, False
    if conv.owner != owner:
        cid, forked = store.fork(conv.id, owner), True
    return cid, store.append(cid, data), forked, conv.title


async def converse(request: Request, question: str, cid: str | None, owner: str,
                   k: int | None = None,
                   collection: str | None = None) -> tuple[str, int, AskResponse, bool, str]:
    """Answer in conversation `cid` (a new one if None; a copy if another browser's):
    (conversation id, turn number, turn, whether it was copied, title)."""
    store = conversations_of(request)
    conv = await run_in_threadpool(store.get, cid) if cid else None
    earlier = [t for _, t in turns_of(conv)][-MAX_HISTORY_TURNS:] if conv else []
    served = collection_of(request, collection or None)
    turn = await work(request, answer_turn, served.engine, question, earlier, k,
                      served.link_name, served.name)
    note(request, abstained=turn.abstained, index_version=turn.index_version)
    kept, n, forked, title = await run_in_threadpool(_keep, store, conv, owner, question, turn)
    return kept, n, turn, forked, title


# --- pages --------------------------------------------------------------------------------------


def render_chat(request: Request, conv: Conversation | None = None, status: int = 200,
                error: str | None = None, draft: str = "") -> Response:
    """The chat page: a conversation (or the empty state), with the sidebar."""
    from qa.server.uploads import library_context

    owner = owner_of(request)
    thread: list[TurnOut] = []
    if conv is not None:
        ratings = feedback_of(request).ratings(conv.id)
        thread = [TurnOut(**t.model_dump(), n=n, rating=ratings.get(n))  # type: ignore[arg-type]
                  for n, t in turns_of(conv)]
        if thread and thread[-1].collection and "collection" not in request.query_params:
            request.state.collection = thread[-1].collection  # the picker keeps the choice
    context: dict[str, Any] = {
        "thread": thread, "conversation": conv, "owned": conv is not None and conv.owner == owner,
        "conversations": conversations_of(request).list(owner), "error": error, "draft": draft,
        "max_chars": request.app.state.settings.max_question_chars,
    }
    if not thread:
        context |= library_context(request)
    return templates.TemplateResponse(request, "chat.html", context, status_code=status)


router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


@router.get("/")
async def chat_page(request: Request) -> Response:
    """A new conversation."""
    return await run_in_threadpool(render_chat, request)


@router.get("/c/{cid}")
async def conversation_page(request: Request, cid: str) -> Response:
    """A conversation, by its unguessable id."""
    conv = await run_in_threadpool(conversations_of(request).get, cid)
    return await run_in_threadpool(render_chat, request, conv)


@router.post("/")
async def chat_post(
    request: Request,
    question: Annotated[str, Form(max_length=100_000)] = "",
    conversation: Annotated[str, Form(max_length=64)] = "",
    collection: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A question sent by the plain form; the answer is shown at the conversation's URL, so a
    reload does not send the question again."""
    token, new = client_token(request)
    try:
        cid, n, _, _, _ = await converse(request, question, conversation or None,
                                         str(owner_key(token)), None, collection or None)
    except BadQuestionError as exc:
        conv = (await run_in_threadpool(conversations_of(request).get, conversation)
                if conversation else None)
        return await run_in_threadpool(render_chat, request, conv, 422, str(exc),
                                       question[:10_000])
    response = RedirectResponse(f"/c/{cid}#turn-{n}", status_code=303)
    remember(request, response, token, new)
    return response


def _owned(request: Request, cid: str) -> Conversation:
    conv = conversations_of(request).get(cid)
    if conv.owner != owner_of(request):
        raise AccessDeniedError("only the browser that started this conversation may change it")
    return conv


@router.post("/c/{cid}/delete")
async def delete_post(request: Request, cid: str) -> Response:
    """Delete a conversation (the plain form's way)."""
    await run_in_threadpool(_owned, request, cid)
    await run_in_threadpool(conversations_of(request).delete, cid)
    return RedirectResponse("/", status_code=303)


def _rate(request: Request, cid: str, n: int, rating: str, comment: str) -> None:
    conv = _owned(request, cid)
    feedback_of(request).record(cid, n, rating, comment, turn_of(conv.turns, n))


@router.post("/c/{cid}/feedback")
async def feedback_post(
    request: Request, cid: str,
    n: Annotated[int, Form(ge=0, le=10_000)],
    rating: Annotated[Literal["up", "down"], Form()],
    comment: Annotated[str, Form(max_length=MAX_COMMENT)] = "",
) -> Response:
    """Feedback on one answer, sent by the plain form."""
    await run_in_threadpool(_rate, request, cid, n, rating, comment)
    return RedirectResponse(f"/c/{cid}#turn-{n}", status_code=303)


@router.get("/c/{cid}/export", response_class=PlainTextResponse)
async def export_markdown(request: Request, cid: str) -> Response:
    """The conversation as Markdown, its citations as footnotes."""
    conv = await run_in_threadpool(conversations_of(request).get, cid)
    base = str(request.base_url).rstrip("/")
    text = conversation_markdown(conv.title, [t for _, t in turns_of(conv)], base,
                                 f"{base}/c/{conv.id}", time.time())
    return Response(text, media_type="text/markdown; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="conversation-{cid[:8]}.md"'})


# --- JSON ---------------------------------------------------------------------------------------

api = APIRouter(tags=["conversations"], responses=API_ERRORS)


@api.post("/api/chat", response_model=ChatResponse, summary="Ask within a kept conversation")
async def api_chat(body: ChatRequest, request: Request, response: Response) -> ChatResponse:
    """Answer a question in a conversation the server keeps: a new one when `conversation_id`
    is empty, a copy when it is another browser's. The browser is known by a cookie."""
    token, new = client_token(request)
    cid, n, turn, forked, title = await converse(request, body.question, body.conversation_id,
                                                 str(owner_key(token)), body.k, body.collection)
    remember(request, response, token, new)
    return ChatResponse(conversation_id=cid, url=f"/c/{cid}", title=title, forked=forked,
                        turn=TurnOut(**turn.model_dump(), n=n))


@api.get("/api/conversations", response_model=list[ConversationSummaryOut])
async def api_conversations(request: Request) -> list[ConversationSummaryOut]:
    """This browser's conversations, most recent first."""
    rows = await run_in_threadpool(conversations_of(request).list, owner_of(request))
    return [ConversationSummaryOut(id=r.id, title=r.title, url=f"/c/{r.id}", created=r.created,
                                   updated=r.updated, turns=r.turns) for r in rows]


@api.get("/api/conversations/{cid}", response_model=ConversationOut)
async def api_conversation(request: Request, cid: str) -> ConversationOut:
    """A conversation with its turns."""
    conv = await run_in_threadpool(conversations_of(request).get, cid)
    ratings = await run_in_threadpool(feedback_of(request).ratings, cid)
    turns = [TurnOut(**t.model_dump(), n=n, rating=ratings.get(n))  # type: ignore[arg-type]
             for n, t in turns_of(conv)]
    return ConversationOut(id=conv.id, title=conv.title, url=f"/c/{conv.id}",
                           owned=conv.owner == owner_of(request), created=conv.created,
                           updated=conv.updated, turns=turns)


@api.delete("/api/conversations/{cid}", status_code=204, response_class=Response)
async def api_delete(request: Request, cid: str) -> Response:
    """Delete a conversation; only the browser that started it may."""
    await run_in_threadpool(_owned, request, cid)
    await run_in_threadpool(conversations_of(request).delete, cid)
    return Response(status_code=204)


@api.post("/api/conversations/{cid}/turns/{n}/feedback", response_model=FeedbackOut,
          tags=["feedback"])
async def api_feedback(request: Request, cid: str, n: int, body: FeedbackIn) -> FeedbackOut:
    """Mark an answer good or bad, with an optional comment; the latest mark counts."""
    if not 0 <= n <= 10_000:
        raise NotFoundError("no such turn in this conversation")
    await run_in_threadpool(_rate, request, cid, n, body.rating, body.comment)
    return FeedbackOut(conversation_id=cid, n=n, rating=body.rating, comment=body.comment)

