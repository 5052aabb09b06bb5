"""The compiled engine (``make native``) is imported only while it was built from the sources as
they are now; after an edit the sources run, with a warning, so no test runs stale code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import engine
import engine.apply

WHICH = "import engine.apply; print(getattr(engine.apply, 'BUILT', 'sources'))"


def _run(root: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that imports ``engine`` from ``root``."""
    inherited = {k: v for k, v in os.environ.items() if k != "TILLSTREAM_ENGINE"}
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, env={**inherited, "PYTHONPATH": str(root), **env},
                          check=True)


def test_a_build_is_imported_only_while_it_matches_the_sources(tmp_path):
    shutil.copytree(engine.SOURCES, tmp_path / "engine",
                    ignore=shutil.ignore_patterns("__pycache__"))
    native = tmp_path / "build" / "native" / "engine"
    native.mkdir(parents=True)
    (native / "apply.py").write_text("BUILT = 'native'\n")  # stands in for apply.*.so
    assert _run(tmp_path, WHICH).stdout.strip() == "sources", "no digest recorded"
    digest = _run(tmp_path, "import engine; print(engine.source_digest())").stdout.strip()
    (native / engine.NATIVE_DIGEST).write_text(digest)

    assert _run(tmp_path, WHICH).stdout.strip() == "native"
    assert _run(tmp_path, WHICH, TILLSTREAM_ENGINE="python").stdout.strip() == "sources"
    with (tmp_path / "engine" / "rules.py").open("a") as source:
        source.write("\n# an edit\n")
    stale = _run(tmp_path, WHICH)
    assert stale.stdout.strip() == "sources"
    assert "changed since the engine was compiled" in stale.stderr


def test_a_current_build_is_the_engine_under_test():
    recorded = engine.NATIVE / engine.NATIVE_DIGEST
    if os.environ.get("TILLSTREAM_ENGINE") != "python" and recorded.exists() \
            and recorded.read_text() == engine.source_digest():
        assert not engine.apply.__file__.endswith(".py")
