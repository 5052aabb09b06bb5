"""Tillstream's pure domain logic; the entry point is ``engine.apply.apply``.

The per-event path can be compiled with mypyc (``make native``: build_engine.py) into
``build/native/engine``. That directory goes ahead of this one on the package's path — so its
extension modules are imported instead of these sources — only while the digest of the sources
it was built from matches ``engine/*.py`` now: after an edit the engine runs from the sources,
with a warning, until it is rebuilt; a stale compiled module is never imported.
``TILLSTREAM_ENGINE=python`` runs the sources even when the build is current.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

SOURCES = Path(__file__).resolve().parent
NATIVE = SOURCES.parent / "build" / "native" / "engine"
NATIVE_DIGEST = "SOURCES.sha256"


def source_digest() -> str:
    """The SHA-256 of every ``engine/*.py``, by name and content."""
    digest = hashlib.sha256()
    for path in sorted(SOURCES.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _use_native() -> None:
    recorded = NATIVE / NATIVE_DIGEST
    if os.environ.get("TILLSTREAM_ENGINE") == "python" or not recorded.exists():
        return
    if recorded.read_text() == source_digest():
        __path__.insert(0, str(NATIVE))
    else:
        warnings.warn("engine/*.py changed since the engine was compiled: running the Python "
                      "sources (slower) until `make native` rebuilds it")


_use_native()
