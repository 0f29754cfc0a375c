"""The embedding model's own tokenizer, loaded without torch, for measuring chunk budgets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer


class WordPieceCounter:
    """Counts and cuts text in the model's word pieces."""

    def __init__(self, tokenizer_file: Path):
        self._tok = Tokenizer.from_file(str(tokenizer_file))
        self._tok.no_truncation()
        self._tok.no_padding()

    def count(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, special tokens excluded."""
        if not texts:
            return []
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def cut(self, text: str, budget: int) -> list[tuple[int, int]]:
        """Contiguous character spans covering `text`, each at most `budget` word pieces,
        cut between words where possible; characters the tokenizer ignores stay covered."""
        offsets = self._tok.encode(text, add_special_tokens=False).offsets
        cuts = [0]
        i = 0
        while i + budget < len(offsets):
            j = i + budget
            # Prefer to cut where a new word starts, looking back a little.
            for k in range(j, max(i + 1, j - 24), -1):
                if offsets[k][0] > offsets[k - 1][1]:
                    j = k
                    break
            cuts.append(offsets[j][0])
            i = j
        bounds = [*cuts, len(text)]
        spans = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            piece = text[a:b]
            lead = len(piece) - len(piece.lstrip())
            trail = len(piece.rstrip())
            if trail > lead:
                spans.append((a + lead, a + trail))
        return spans
