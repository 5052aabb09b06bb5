"""Runtime settings of a worker: command-line options with environment equivalents."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import orjson

EMBEDDED_BROKER = "embedded://"


@dataclass(slots=True)
class Settings:
    """Everything a worker needs to start; built once by the CLI (or a test) and passed in."""

    broker: str = EMBEDDED_BROKER
    data_dir: Path = Path("./data")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    partitions: int = 4
    app_id: str = "tillstream"
    #: ``role:token,...`` (TILLSTREAM_TOKENS); never printed.
    tokens: str = field(default="", repr=False)
    #: Lets tests move the worker's clock forward (POST /v1/admin/clock); never in production.
    test_clock: bool = False
    #: ``loyalty`` (the member agent and everything around it) or ``minimal`` (the counter
    #: agent that proves the plumbing; benchmarks compare it with peer engines).
    pipeline: str = "loyalty"
    #: Extra faust settings (tests lower Kafka timeouts through this).
    faust_options: dict = field(default_factory=dict)
    #: Kafka mode: how long a fetch may wait on the broker for records. Kafka answers as soon
    #: as a record arrives, so this only paces idle polling there (Kafka's default, 500 ms;
    #: faust's is 1.5 s); tansu holds the fetch instead, so on tansu it is the latency floor.
    fetch_max_wait_ms: int = 500

    @property
    def embedded(self) -> bool:
        return self.broker.startswith("embedded:")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            broker=env.get("TILLSTREAM_BROKER", defaults.broker),
            data_dir=Path(env.get("TILLSTREAM_DATA_DIR", str(defaults.data_dir))),
            web_host=env.get("TILLSTREAM_WEB_HOST", defaults.web_host),
            web_port=int(env.get("TILLSTREAM_WEB_PORT", defaults.web_port)),
            partitions=int(env.get("TILLSTREAM_PARTITIONS", defaults.partitions)),
            app_id=env.get("TILLSTREAM_APP_ID", defaults.app_id),
            faust_options=orjson.loads(env.get("TILLSTREAM_FAUST_OPTIONS", "{}")),
            fetch_max_wait_ms=int(env.get("TILLSTREAM_FETCH_MAX_WAIT_MS",
                                          defaults.fetch_max_wait_ms)),
            tokens=env.get("TILLSTREAM_TOKENS", ""),
            test_clock=env.get("TILLSTREAM_TEST_CLOCK", "") == "1",
            pipeline=env.get("TILLSTREAM_PIPELINE", defaults.pipeline),
        )
