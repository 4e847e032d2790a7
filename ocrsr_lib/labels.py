"""Labels: TextZoom's evaluation normalisation and the recognizers' character sets."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence

_NOT_ALPHANUMERIC = re.compile(r"[^0-9a-z]")


def normalize_label(text: str) -> str:
    """TextZoom's evaluation form of a label: lower-case, keep only [0-9a-z]."""
    return _NOT_ALPHANUMERIC.sub("", text.lower())


class Charset:
    """An ordered symbol table: special tokens first, then the characters a model can read."""

    def __init__(
        self,
        name: str,
        specials: Sequence[str],
        characters: str,
        start: str,
        end: str,
        padding: str | None = None,
        unknown: str | None = None,
    ) -> None:
        self.name = name
        self.symbols: tuple[str, ...] = tuple(specials) + tuple(characters)
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"charset {name!r} repeats a symbol")
        self._index = {symbol: i for i, symbol in enumerate(self.symbols)}
        self.specials = tuple(specials)
        self.characters = characters
        self.start_id = self._index[start]
        self.end_id = self._index[end]
        self.padding_id = self._index[padding] if padding is not None else None
        self.unknown_id = self._index[unknown] if unknown is not None else None

    def __len__(self) -> int:
        return len(self.symbols)

    def __repr__(self) -> str:
        return f"Charset({self.name!r}, {len(self)} symbols)"

    def encode(
        self,
        text: str,
        add_start: bool = False,
        add_end: bool = False,
        max_length: int | None = None,
    ) -> list[int]:
        """Normalise `text` and map it to ids; refuse labels longer than `max_length` characters."""
        characters = normalize_label(text)
        if max_length is not None and len(characters) > max_length:
            raise ValueError(
                f"label {text!r} has {len(characters)} characters after normalisation; "
                f"the {self.name} charset allows at most {max_length}"
            )
        ids = [self._index[c] for c in characters]
        return ([self.start_id] if add_start else []) + ids + ([self.end_id] if add_end else [])

    def decode(self, ids: Iterable[int]) -> str:
        """Map ids back to text: stop at the end token, drop the other special tokens."""
        characters = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.symbols):
                raise ValueError(f"id {i} is outside the {self.name} charset (0..{len(self) - 1})")
            if i == self.end_id:
                break
            if i >= len(self.specials):
                characters.append(self.symbols[i])
        return "".join(characters)


LOWERCASE_ALPHANUMERIC = string.digits + string.ascii_lowercase

# The Scene Text Telescope guiding recognizer: '-' is both start and end token (37 symbols).
GUIDE_CHARSET = Charset("tbsrn-guide", ["-"], LOWERCASE_ALPHANUMERIC, start="-", end="-")

# CDistNet: <blank> (also padding), <unk>, <s>, </s>, then 0-9a-z (40 symbols).
CDISTNET_CHARSET = Charset(
    "cdistnet",
    ["<blank>", "<unk>", "<s>", "</s>"],
    LOWERCASE_ALPHANUMERIC,
    start="<s>",
    end="</s>",
    padding="<blank>",
    unknown="<unk>",
)

CDISTNET_MAX_LABEL_LENGTH = 30
