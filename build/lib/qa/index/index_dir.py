"""The index folder: versions of an index behind an atomically replaced pointer.

Layout::

    CURRENT             name of the version being served (replaced atomically)
    build.lock          held by the one build allowed at a time
    versions/<name>/    one version (see `qa.index.store`)
    versions/.tmp-*     a build in progress; removed if found stale
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from qa.errors import IndexCorruptError, IndexMissingError
from qa.index.store import IndexVersion

CURRENT = "CURRENT"


class IndexDir:
    """The folder that holds all versions and the pointer to the current one."""

    def __init__(self, path: Path):
        self.path = path
        self.versions = path / "versions"

    def current_name(self) -> str | None:
        try:
            name = (self.path / CURRENT).read_text().strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(f"cannot read {self.path / CURRENT}: {exc}") from exc
        if not name or "/" in name or name.startswith(".") or not name.isprintable():
            raise IndexCorruptError(f"{self.path / CURRENT} is damaged; run 'qa index --full'")
        return name

    def open_current(self) -> IndexVersion:
        """Load the version CURRENT points to, or explain why it cannot be done."""
        name = self.current_name()
        if name is None:
            raise IndexMissingError(f"no index at {self.path}; run 'qa index' first")
        folder = self.versions / name
        if not folder.is_dir():
            raise IndexCorruptError(f"index version {name} named by {self.path / CURRENT} is gone; "
                                    "run 'qa index --full'")
        return IndexVersion(folder)

    def new_temp(self) -> Path:
        self.versions.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime('%Y%m%dT%H%M%S')
        return self.versions / f".tmp-{stamp}-{os.getpid()}-{os.urandom(3).hex()}"

    def publish(self, temp: Path) -> str:
        """Move a finished build into place and point CURRENT at it, atomically."""
        seqs = [int(p.name[1:7]) for p in self.versions.glob("v[0-9][0-9][0-9][0-9][0-9][0-9]-*")]
        # A sequence number first, so names sort in build order.
        name = f"v{max(seqs, default=0) + 1:06d}-" + time.strftime("%Y%m%dT%H%M%S")
        final = self.versions / name
        os.replace(temp, final)
        pointer = self.path / f".{CURRENT}.{os.getpid()}.tmp"
        pointer.write_text(name + "\n")
        with open(pointer, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(pointer, self.path / CURRENT)
        return name

    def remove_stale_temps(self) -> list[str]:
        """Delete folders of builds that died; call only while holding the build lock."""
        removed = []
        if self.versions.is_dir():
            for p in self.versions.glob(".tmp-*"):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
        for p in self.path.glob(f".{CURRENT}.*.tmp"):
            p.unlink(missing_ok=True)
        return removed

    def prune(self, keep: int) -> list[str]:
        """Remove old versions beyond the newest `keep`, never the current one."""
        if not self.versions.is_dir():
            return []
        current = self.current_name()
        names = sorted(p.name for p in self.versions.iterdir()
                       if p.is_dir() and p.name.startswith("v"))
        old = [n for n in names[:-keep] if n != current] if keep < len(names) else []
        for n in old:
            shutil.rmtree(self.versions / n, ignore_errors=True)
        return old
