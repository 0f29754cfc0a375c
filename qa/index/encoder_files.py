"""The exported encoder as files: a folder of three, named by one content hash.

An index version keeps the encoder its vectors were made with in `<version>/encoder/`, and its
manifest records the folder's hash under `model.encoder.sha256`. Copying a version folder to
another machine is then enough to answer from it: the question side needs only these files and
onnxruntime. Folders are hard-linked between versions where the filesystem allows, so the kept
versions share one copy on disk.

Layout of an encoder folder::

    encoder.json     model id, pooling, token limit, dimension, how it was made
    model.onnx       the graph (see `qa.index.bert_onnx`), int8 or float32
    tokenizer.json   the model's tokenizer (Hugging Face `tokenizers` format)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qa.errors import IndexCorruptError

log = logging.getLogger(__name__)

ENCODER_DIR = "encoder"
CONFIG_FILE = "encoder.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
FILES = (CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE)
_BLOCK = 1 << 20


def _update(h: Any, name: str, size: int) -> None:
    # Name and length before each file's bytes: no two different folders hash alike.
    h.update(f"{name}\0{size}\0".encode())


def digest(contents: Mapping[str, bytes]) -> str:
    """The hash of an encoder folder, from its files' bytes."""
    h = hashlib.sha256()
    for name in FILES:
        _update(h, name, len(contents[name]))
        h.update(contents[name])
    return h.hexdigest()


def folder_hash(folder: Path) -> str:
    """The hash of an encoder folder on disk (same value as `digest`), read in blocks."""
    h = hashlib.sha256()
    for name in FILES:
        path = folder / name
        try:
            with open(path, "rb") as fh:
                _update(h, name, os.fstat(fh.fileno()).st_size)
                while block := fh.read(_BLOCK):
                    h.update(block)
        except OSError as exc:
            raise IndexCorruptError(f"encoder file {path} cannot be read: {exc}; "
                                    "run 'qa index --full'") from exc
    return h.hexdigest()


def mismatch(folder: Path, expected: str, actual: str) -> IndexCorruptError:
    """The error for an encoder folder whose files are not the ones the manifest names."""
    return IndexCorruptError(
        f"the encoder in {folder} does not match the index manifest (sha256 {actual[:12]}…, "
        f"manifest says {expected[:12]}…): its vectors and this encoder would disagree. "
        "Copy the version folder again, or run 'qa index --full'")


def read_folder(folder: Path, expected: str | None = None) -> tuple[dict[str, bytes], str]:
    """The files of an encoder folder and their hash; IndexCorruptError unless it is `expected`.

    The bytes returned are the bytes hashed, so what loads is what was checked."""
    contents: dict[str, bytes] = {}
    for name in FILES:
        try:
            contents[name] = (folder / name).read_bytes()
        except OSError as exc:
            raise IndexCorruptError(f"encoder file {folder / name} cannot be read: {exc}; "
                                    "run 'qa index --full'") from exc
    actual = digest(contents)
    if expected is not None and actual != expected:
        raise mismatch(folder, expected, actual)
    return contents, actual


def entry(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest's record of the version's encoder, or None if the version has none."""
    model = manifest.get("model")
    found = model.get("encoder") if isinstance(model, dict) else None
    return found if isinstance(found, dict) else None


def verify(version_folder: Path, manifest: Mapping[str, Any]) -> None:
    """Check a version's encoder against its manifest, if the version has one."""
    record = entry(manifest)
    if record is None:
        return
    expected = record.get("sha256")
    if not isinstance(expected, str):
        raise IndexCorruptError(f"the manifest in {version_folder} names an encoder without "
                                "a hash; run 'qa index --full'")
    folder = version_folder / ENCODER_DIR
    if not folder.is_dir():
        raise IndexCorruptError(f"index version {version_folder} has lost its encoder folder; "
                                "copy the version folder again, or run 'qa index --full'")
    actual = folder_hash(folder)
    if actual != expected:
        raise mismatch(folder, expected, actual)


def install(source: Path, dest: Path) -> str:
    """Put the encoder in `source` into the new folder `dest` (hard links where possible) and
    return its hash."""
    dest.mkdir(parents=True)
    for name in FILES:
        try:
            os.link(source / name, dest / name)
        except OSError:  # another filesystem, or links not allowed: a copy, flushed
            shutil.copyfile(source / name, dest / name)
            with open(dest / name, "rb") as fh:
                os.fsync(fh.fileno())
    return folder_hash(dest)


def write_folder(dest: Path, contents: Mapping[str, bytes]) -> str:
    """Write an encoder folder atomically; an existing complete one is kept. Returns its hash."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in FILES:
        with open(tmp / name, "wb") as fh:
            fh.write(contents[name])
            fh.flush()
            os.fsync(fh.fileno())
    try:
        os.replace(tmp, dest)
    except OSError:  # another process finished the same export first; keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("encoder %s was written by another process meanwhile", dest)
    return digest(contents)


def config_of(folder: Path) -> dict[str, Any] | None:
    """An encoder folder's encoder.json, or None if the folder is absent or incomplete."""
    if not all((folder / name).is_file() for name in FILES):
        return None
    try:
        cfg = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    return cfg if isinstance(cfg, dict) else None
