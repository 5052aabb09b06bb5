"""``tillstream`` command line: ``tillstream worker`` runs a worker with its web server."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Mapping

from agents.settings import Settings


def _parser(env: Settings, loglevel: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tillstream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run a worker (agents, tables and the HTTP API)")
    worker.add_argument("--broker", default=env.broker,
                        help="embedded:// (default) or kafka://host:port[,host:port] "
                             "[TILLSTREAM_BROKER]")
    worker.add_argument("--data-dir", type=Path, default=env.data_dir,
                        help="local state and embedded log [TILLSTREAM_DATA_DIR, ./data]")
    worker.add_argument("--web-host", default=env.web_host,
                        help="HTTP bind address [TILLSTREAM_WEB_HOST, 127.0.0.1]")
    worker.add_argument("--web-port", type=int, default=env.web_port,
                        help="HTTP port [TILLSTREAM_WEB_PORT, 6066]")
    worker.add_argument("--partitions", type=int, default=env.partitions,
                        help="partitions of the topics this worker creates "
                             "[TILLSTREAM_PARTITIONS, 4]")
    worker.add_argument("--loglevel", default=loglevel, help="[TILLSTREAM_LOGLEVEL, info]")
    return parser


def worker_settings(argv: list[str], environ: Mapping[str, str] | None = None
                    ) -> tuple[Settings, str]:
    """The worker's settings and log level: the environment's (``Settings.from_env``), with
    what the command line gives instead. Every setting without an option keeps its
    environment value (the fetch wait was once dropped here, so Kafka-mode workers waited
    500 ms on a fetch whatever TILLSTREAM_FETCH_MAX_WAIT_MS said)."""
    environ = os.environ if environ is None else environ
    env = Settings.from_env(environ)
    args = _parser(env, environ.get("TILLSTREAM_LOGLEVEL", "info")).parse_args(argv)
    settings = replace(env, broker=args.broker, data_dir=args.data_dir, web_host=args.web_host,
                       web_port=args.web_port, partitions=args.partitions)
    return settings, args.loglevel


def main(argv: list[str] | None = None) -> None:
    settings, loglevel = worker_settings(sys.argv[1:] if argv is None else argv)
    run_worker(settings, loglevel=loglevel)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    from api.auth import AuthConfigError

    try:
        worker = build_worker(settings, loglevel)
    except AuthConfigError as exc:
        sys.exit(f"tillstream: {exc}")
    worker.execute_from_commandline()


def build_worker(settings: Settings, loglevel: str = "info"):
    """The faust worker of a Tillstream app, not yet started."""
    from faust.worker import Worker

    from agents.app import create_app

    worker = Worker(create_app(settings), loglevel=loglevel)
    # At warning level and above faust shows a terminal spinner that turns on every log
    # record, and so sets the root logger to DEBUG: every debug call in faust and aiokafka
    # then builds a record (about 9 % of a Kafka-mode worker's CPU, measured with py-spy).
    worker.spinner = None
    return worker


if __name__ == "__main__":
    main(sys.argv[1:])
