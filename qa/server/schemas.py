"""Request and response models of the HTTP API; they are also its OpenAPI documentation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qa.search.answer import Answer, Citation

# Limits on what a client may send. The question's own limit is Settings.max_question_chars.
MAX_HISTORY_TURNS = 20
MAX_MESSAGE_CHARS = 4000
MIN_K, MAX_K = 1, 20
MAX_CHAT_MESSAGES = 200  # OpenAI clients resend the whole conversation; the last turns are used
MAX_BODY_BYTES = 512 * 1024


def encodable(value: Any) -> bool:
    """Whether every string in `value` can be written as UTF-8 (JSON's "\\ud800" cannot)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list | tuple):
        return all(encodable(v) for v in value)
    if isinstance(value, dict):
        return all(encodable(k) and encodable(v) for k, v in value.items())
    return True


UNENCODABLE = "holds a lone surrogate, which is not valid Unicode text"


class Incoming(BaseModel):
    """A request body: text that could not be sent back (lone surrogates) is refused with 422."""

    @field_validator("*")
    @classmethod
    def _encodable(cls, value: Any) -> Any:
        if not encodable(value):
            raise ValueError(UNENCODABLE)
        return value

    @model_validator(mode="after")
    def _extra_encodable(self) -> Incoming:
        for name, value in (self.model_extra or {}).items():
            if not encodable(name) or not encodable(value):
                raise ValueError(f"field {name!r} {UNENCODABLE}"
                                 if encodable(name) else f"a field name {UNENCODABLE}")
        return self


class Message(Incoming):
    """One earlier turn of the conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_MESSAGE_CHARS, strict=True)


class AskFilters(Incoming):
    """Which documents may be searched: any of `documents` and, if `paths` is given, only those
    under one of the path prefixes (string prefixes of the paths /api/documents lists, so
    'reports/' is the folder and 'reports' also takes 'reports-2024.txt')."""

    model_config = ConfigDict(extra="forbid")

    documents: list[str] = Field(default_factory=list, max_length=200,
                                 description="Document ids, as /api/documents lists them.")
    paths: list[str] = Field(default_factory=list, max_length=20,
                             description="Path prefixes, relative to the corpus folder.")


class AskRequest(Incoming):
    """A question, optionally with the conversation so far so follow-ups can be resolved."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "question": "When will Rapidus produce its chips?",
            "history": [],
            "k": 5,
        }]},
    )

    question: str = Field(strict=True, description="The question; at most QA_MAX_QUESTION_CHARS "
                          "(2000 by default) characters, not empty.")
    history: list[Message] = Field(
        default_factory=list, max_length=MAX_HISTORY_TURNS,
        description=f"Earlier turns, oldest first; at most {MAX_HISTORY_TURNS} of at most "
                    f"{MAX_MESSAGE_CHARS} characters each.")
    k: int | None = Field(None, ge=MIN_K, le=MAX_K, strict=True,
                          description="Passages to consider (default QA_DEFAULT_K).")
    collection: str | None = Field(None, max_length=64, description="The collection to ask "
                                   "(see /api/collections); default the first.")
    filters: AskFilters | None = Field(
        None, description="Search only these documents; applied inside retrieval, so the "
        "question still gets `k` passages from them. An unknown id, a prefix with '..' or a "
        "filter matching no document is a 422.")


class CitationOut(BaseModel):
    """A numbered source passage; offsets are characters into the document's clean text."""

    n: int
    document_id: str
    title: str
    path: str
    page: int | None = None
    section: str | None = None
    start: int
    end: int
    text: str
    highlight: list[tuple[int, int]] = Field(
        description="Spans of the sentences that support the answer.")
    score: float
    url: str = Field(description="The chat page's view of this passage.")

    @classmethod
    def of(cls, c: Citation, collection: str | None = None) -> CitationOut:
        """The API form of an engine citation; links name `collection` if given."""
        return cls(n=c.n, document_id=c.document_id, title=c.title, path=c.path, page=c.page,
                   section=c.section, start=c.start, end=c.end, text=c.text,
                   highlight=[(a, b) for a, b in c.highlight], score=c.score,
                   url=source_url(c, collection))


def source_url(c: Citation, collection: str | None = None) -> str:
    """A link to the passage of a citation inside its document, highlight included; it names
    the collection when that is not the default."""
    where = f"collection={collection}&" if collection else ""
    url = f"/documents/{c.document_id}?{where}passage={c.start}-{c.end}"
    if c.highlight:
        url += "&highlight=" + ",".join(f"{a}-{b}" for a, b in c.highlight)
    return url + "#hl"


class AnswerSpanOut(BaseModel):
    """The short answer: a span inside the sentence cited as `n`, in document offsets."""

    text: str
    n: int
    document_id: str
    start: int
    end: int


class AskResponse(BaseModel):
    """An answer whose `[n]` markers refer to `citations`, or an abstention."""

    question: str
    query: str = Field(description="What was actually searched (differs for resolved follow-ups).")
    answer: str
    citations: list[CitationOut]
    confidence: float
    abstained: bool
    index_version: str
    answer_span: AnswerSpanOut | None = Field(
        None, description="The shortest text that answers (a year, an amount, a name) and where "
        "it sits; absent when the supporting sentence is the answer.")
    reason: str = Field("", description="Why the question was not answered, when it was not.")
    collection: str | None = Field(None, description="The collection that answered.")

    @classmethod
    def of(cls, a: Answer, link_collection: str | None = None,
           collection: str | None = None) -> AskResponse:
        """The API form of an engine answer; citation links name `link_collection`."""
        span = a.answer_span
        return cls(question=a.question, query=a.query, answer=a.text, collection=collection,
                   citations=[CitationOut.of(c, link_collection) for c in a.citations],
                   confidence=a.confidence,
                   abstained=a.abstained, index_version=a.index_version,
                   answer_span=AnswerSpanOut(text=span.text, n=span.n,
                                             document_id=span.document_id, start=span.start,
                                             end=span.end) if span else None,
                   reason=a.reason)


class DocumentSummary(BaseModel):
    id: str
    title: str
    path: str
    chars: int
    chunks: int


class Span(BaseModel):
    """A span of a document with the page and section it falls in."""

    start: int
    end: int
    text: str
    page: int | None = None
    section: str | None = None


class DocumentOut(BaseModel):
    """A document's full clean text; `highlight` echoes the spans asked for."""

    id: str
    title: str
    path: str
    text: str
    pages: list[tuple[int, int, int]] = Field(description="(start, end, page) of each page.")
    highlight: list[Span] = Field(default_factory=list)


class IndexSummary(BaseModel):
    version: str
    qa_version: str | None = None
    model: dict[str, Any]
    chunker: dict[str, Any]
    documents: int
    chunks: int
    skipped: list[dict[str, Any]]
    built_at: str | None = None
    build_seconds: float | None = None


class Health(BaseModel):
    status: Literal["ok"]
    index_version: str
    documents: int
    chunks: int


class ErrorBody(BaseModel):
    type: str = Field(description="A stable machine-readable name of the problem.")
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """Every 4xx/5xx of the API has this shape (also what OpenAI clients expect)."""

    error: ErrorBody


# --- OpenAI-compatible chat completions -------------------------------------------------------


class ContentPart(Incoming):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(Incoming):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text, content parts joined."""
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class StreamOptions(Incoming):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = Field(False, description="End the stream with a chunk holding "
                                "`usage` and no choices.")


class ChatCompletionRequest(Incoming):
    """The subset of OpenAI's request that matters here; other fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "model": "qa", "messages": [{"role": "user", "content": "What is Rapidus building?"}]}]})

    model: str = Field(description="A collection's name (GET /v1/models); 'qa' is the default "
                       "collection.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_CHAT_MESSAGES)
    stream: bool = False
    k: int | None = Field(None, ge=MIN_K, le=MAX_K, strict=True)
    max_tokens: int | None = Field(
        None, ge=1, description="Cut the content to this many tokens (the embedding model's "
        "word pieces) at a sentence boundary; `finish_reason` is then 'length'.")
    max_completion_tokens: int | None = Field(None, ge=1, description="Same as `max_tokens`; "
                                              "the smaller of the two applies.")
    stream_options: StreamOptions | None = None
    filters: AskFilters | None = Field(None, description="As in /api/ask: search only these "
                                       "documents (`extra_body` in OpenAI clients).")

    def wants_stream_usage(self) -> bool:
        """Whether a stream should end with a usage chunk."""
        return self.stream_options is not None and self.stream_options.include_usage


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatChoiceMessage
    finish_reason: Literal["stop", "length"] = "stop"


class Usage(BaseModel):
    """Word pieces of the embedding model's tokenizer: in every message sent, and in the
    content returned."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class QAExtra(BaseModel):
    """What an OpenAI response cannot say by itself: what was searched, and how sure."""

    question: str
    query: str
    confidence: float
    abstained: bool
    index_version: str
    collection: str | None = Field(None, description="The collection that answered.")


class ChatCompletion(BaseModel):
    """OpenAI's chat.completion object plus `citations` and `qa`."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = Field(description="Null when the model's tokenizer is not available; "
                                "never estimated.")
    citations: list[CitationOut]
    qa: QAExtra


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
