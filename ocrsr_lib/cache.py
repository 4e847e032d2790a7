"""One cache for everything computed once: trained runs, readings, confusion tables and
quantization evaluations, each named by a short hash of the pure data that determines it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path

from ocrsr_lib.checkpoints import load_checkpoint, save_checkpoint


def short_hash(parts: Mapping) -> str:
    """12 hex digits of the SHA-256 of `parts` as sorted JSON: names a cached artifact."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Cache:
    """A profile's cache folder: `<root>/<kind>/<name>-<hash of the key parts>.pt`.

    Naming a file is pure (no folder is created, no data read); folders appear when a file is
    written (atomically, see `ocrsr_lib.checkpoints`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    def file(self, kind: str, name: str, key_parts: Mapping) -> Path:
        """Where the artifact `name` of `kind` ("checkpoints", "tables") with these parts lives."""
        return self.root / kind / f"{name}-{short_hash(key_parts)}.pt"

    def get_or_compute(
        self, kind: str, name: str, key_parts: Mapping, compute: Callable[[], Mapping]
    ) -> Mapping:
        """The cached artifact, or `compute()` saved (tensors, numbers, strings, containers)."""
        path = self.file(kind, name, key_parts)
        if path.is_file():
            return load_checkpoint(path)
        value = compute()
        save_checkpoint(path, value)
        return value
