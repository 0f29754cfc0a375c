"""Settings: one typed object, read from QA_* environment variables, overridden by CLI flags."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_MODEL = "all-MiniLM-L6-v2"
# Below GRAPH_THRESHOLD vectors exact search takes about a millisecond and needs no training;
# from there to ANN_THRESHOLD an HNSW graph answers in a fraction of that (see index/vectors.py).
GRAPH_THRESHOLD = 20_000
ANN_THRESHOLD = 200_000
# A collection name is also an OpenAI model name and a URL parameter: short, plain characters.
COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class Settings(BaseSettings):
    """Everything qa can be told; build once and pass it down."""

    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    corpus_dir: Path = Field(Path("corpus"), description="Folder of documents to index.")
    index_dir: Path = Field(Path(".qa-index"), description="Folder holding index versions.")
    model: str = Field(
        BUNDLED_MODEL,
        description="Embedding model: the bundled name, a local folder, or a cached hub name.",
    )
    embed_backend: str = Field(
        "onnx-int8",
        description="Encoder: 'onnx-int8' (onnxruntime, int8 per-channel; no torch), 'onnx' "
        "(fp32) or 'torch' (sentence-transformers, the reference; the 'torch' extra). The ONNX "
        "encoder is written once from the local weights, and each index version keeps a copy.",
    )
    embed_batch_size: int = Field(32, ge=1, le=1024)

    chunk_tokens: int = Field(
        128, ge=16, le=512, description="Chunk budget in the model's own word pieces."
    )
    chunk_overlap: int = Field(1, ge=0, le=5, description="Sentences repeated between chunks.")
    embed_context: bool = Field(
        True, description="Prefix each embedded chunk with its document title and section."
    )

    max_file_mb: float = Field(20.0, gt=0, description="Files larger than this are skipped.")
    build_timeout: float = Field(
        0.0, ge=0, description="Seconds a build may run before it is abandoned; 0 is no limit."
    )
    max_question_chars: int = Field(2000, ge=10)
    default_k: int = Field(5, ge=1, le=50, description="Passages considered for an answer.")
    candidates: int = Field(100, ge=10, le=1000, description="Candidates per retriever.")
    min_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="Below this the answer abstains."
    )
    graph_threshold: int = Field(
        GRAPH_THRESHOLD, ge=1,
        description="From this many chunks on, FAISS uses an HNSW graph, not exact search."
    )
    ann_threshold: int = Field(
        ANN_THRESHOLD, ge=1,
        description="From this many chunks on, FAISS uses an IVF index (8-bit codes)."
    )
    keep_versions: int = Field(3, ge=1, le=50, description="Index versions kept on disk.")
    ray_workers: int = Field(
        0, ge=0, le=10_000,
        description="Encoder actors of a build on Ray (qa index --ray); 0 is one per node.",
    )

    collections: dict[str, Path] = Field(
        default_factory=dict,
        description="Named corpora to serve, name -> corpus folder (JSON object); the first is "
        "the default. Empty: corpus_dir and index_dir are served as the one collection 'qa'.",
    )
    collection_index_root: Path | None = Field(
        None,
        description="Where each collection's index lives: <root>/<name>. Unset: a hidden "
        "'.qa-index' folder inside the collection's corpus folder (never indexed itself).",
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    admin_token: str | None = Field(None, description="Bearer token for admin endpoints.")

    reload_interval: float = Field(
        5.0, ge=0, description="Seconds between checks for a newer index version; 0 turns it off."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (JSON list); empty is off.",
    )
    allowed_hosts: list[str] | None = Field(
        None,
        description="Host names the server answers to (JSON list, any port); '*' allows any. "
        "Unset: localhost, 127.0.0.1 and [::1] when bound to loopback, else any.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxies (JSON list of IPs or CIDRs) whose X-Forwarded-For names the client; "
        "empty trusts none.",
    )
    ask_rate: float = Field(
        2.0, ge=0, description="Questions per second each client may ask, sustained; 0 is off."
    )
    ask_burst: int = Field(40, ge=1, description="Questions a client may ask at once.")
    admin_rate: float = Field(
        0.1, ge=0, description="Admin calls per second each client may make, sustained; 0 is off."
    )
    admin_burst: int = Field(5, ge=1, description="Admin calls a client may make at once.")
    workers: int = Field(4, ge=1, le=64, description="Questions answered at the same time.")
    max_queue: int = Field(
        64, ge=0, description="Questions waiting for a worker; beyond it the answer is 503."
    )
    ask_timeout: float = Field(30.0, gt=0, description="Seconds before a question gives up.")
    max_streams: int = Field(32, ge=1, description="Event streams open at the same time.")

    @field_validator("collections")
    @classmethod
    def _collection_names(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            if not COLLECTION_NAME.fullmatch(name):
                raise ValueError(f"collection name {name[:80]!r} must be 1 to 64 letters, digits, "
                                 "'.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for proxy in value:
            ipaddress.ip_network(proxy, strict=False)  # ValueError names the bad entry
        return value
