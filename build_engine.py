"""Compile the engine's per-event path with mypyc into ``build/native/engine`` (``make native``).

``engine/__init__.py`` puts that directory ahead of the sources on the package's path only
while the digest recorded here matches ``engine/*.py``: after any edit the engine runs as plain
Python (with a warning) until it is rebuilt, so a stale compiled module is never imported.
Nothing is done when the recorded digest is current and every module of :data:`COMPILED` is
built. Without a build the engine is plain Python: as correct, about half as fast.

Run: ``.venv/bin/python build_engine.py`` (about 30 s on two cores).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

with warnings.catch_warnings():  # a stale build is what this script replaces
    warnings.simplefilter("ignore")
    from engine import NATIVE, NATIVE_DIGEST, source_digest  # noqa: E402

#: The modules every event runs through: validation, ``apply`` and the analytics deltas; the
#: others (side agents, effects) gain little and stay plain Python.
COMPILED = ("analytics", "apply", "context", "events", "points", "program", "rules", "scenarios",
            "schema", "state", "timers")
TEMP = ROOT / "build" / "native-temp"


def main() -> None:
    digest = source_digest()
    recorded = NATIVE / NATIVE_DIGEST
    built = {path.name.split(".")[0] for path in NATIVE.glob("*.so")}
    if recorded.exists() and recorded.read_text() == digest and built >= set(COMPILED):
        print(f"compiled engine in {NATIVE.relative_to(ROOT)} is current")
        return
    from mypyc.build import mypycify
    from setuptools import Distribution

    began = time.monotonic()
    shutil.rmtree(NATIVE.parent, ignore_errors=True)
    modules = mypycify(["--cache-dir", str(TEMP / "mypy-cache"),
                        *(f"engine/{name}.py" for name in COMPILED)],
                       opt_level="3", group_name="engine.native", target_dir=str(TEMP / "c"))
    build = Distribution({"name": "tillstream-engine-native", "ext_modules": modules,
                          "script_args": ["--quiet", "build_ext",
                                          "--build-lib", str(NATIVE.parent),
                                          "--build-temp", str(TEMP / "o"), "--parallel", "2"]})
    build.parse_command_line()
    build.run_commands()
    recorded.write_text(digest)
    print(f"compiled engine ({', '.join(COMPILED)}) in {time.monotonic() - began:.0f} s "
          f"into {NATIVE.relative_to(ROOT)}")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
