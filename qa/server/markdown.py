"""A conversation as Markdown: each answer's [n] markers become footnotes naming the source,
its place, the cited sentence and a link that finds the sentence again."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from qa.server.schemas import AskResponse, CitationOut
from qa.server.sources import answer_parts

_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def escape(text: str) -> str:
    """Text that Markdown shows as written (corpus text may hold Markdown or HTML)."""
    return _SPECIAL.sub(r"\\\1", text)


def _quoted(c: CitationOut) -> str:
    parts = [c.text[a - c.start:b - c.start].strip() for a, b in c.highlight
             if c.start <= a < b <= c.end]
    text = " … ".join(p for p in parts if p) or c.text.strip()
    return " ".join(text.split())


def _footnote(label: str, c: CitationOut, base: str) -> str:
    where = c.path + (f", page {c.page}" if c.page is not None else "") + (
        f", {c.section}" if c.section else "")
    return (f"[^{label}]: **{escape(c.title)}** ({escape(where)}): “{escape(_quoted(c))}” "
            f"<{base}{c.url}>")


def conversation_markdown(title: str, turns: Sequence[AskResponse], base: str, link: str,
                          now: float) -> str:
    """The conversation as a Markdown document; `base` makes the source links absolute."""
    lines = [f"# {escape(title)}", "",
             f"Exported {time.strftime('%Y-%m-%d %H:%M', time.localtime(now))} from <{link}>.",
             ""]
    for t, turn in enumerate(turns, start=1):
        by_n = {c.n: c for c in turn.citations}
        lines += [f"## {escape(' '.join(turn.question.split()))}", ""]
        notes: list[str] = []
        used: dict[int, str] = {}
        if turn.abstained:
            lines += ["*Not found in the corpus.*" + (f" {escape(turn.reason)}"
                                                      if turn.reason else ""), ""]
            for c in turn.citations:
                label = f"{t}-{c.n}"
                lines.append(f"- Closest: {escape(c.title)}[^{label}]")
                notes.append(_footnote(label, c, base))
        else:
            text = []
            for piece, n in answer_parts(turn.answer, set(by_n)):
                if n is None:
                    text.append(escape(piece))
                    continue
                label = used.setdefault(n, f"{t}-{n}")
                text.append(f"[^{label}]")
            lines.append("".join(text).strip())
            notes += [_footnote(label, by_n[n], base) for n, label in used.items()]
        lines += ["", f"*Index version {turn.index_version}, confidence "
                      f"{turn.confidence:.2f}.*", ""]
        if notes:
            lines += [*notes, ""]
    return "\n".join(lines).rstrip() + "\n"
