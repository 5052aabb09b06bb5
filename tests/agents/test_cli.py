"""The worker the CLI builds."""

from __future__ import annotations

import logging

import pytest

from agents.cli import build_worker, worker_settings
from agents.settings import Settings


@pytest.fixture
def restored_logging():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("loglevel, expected", [("warning", logging.WARNING),
                                                ("info", logging.INFO)])
def test_debug_calls_build_no_records_above_debug_level(tmp_path, restored_logging,
                                                          loglevel, expected):
    worker = build_worker(Settings(data_dir=tmp_path), loglevel=loglevel)
    worker._setup_logging()
    assert logging.getLogger().level == expected
    assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)


def test_the_worker_keeps_every_environment_setting_the_command_line_does_not_give(tmp_path):
    environ = {"TILLSTREAM_BROKER": "kafka://127.0.0.1:9092", "TILLSTREAM_FETCH_MAX_WAIT_MS": "10",
               "TILLSTREAM_APP_ID": "shop", "TILLSTREAM_PIPELINE": "minimal",
               "TILLSTREAM_TOKENS": "admin:s3cret", "TILLSTREAM_TEST_CLOCK": "1",
               "TILLSTREAM_FAUST_OPTIONS": '{"broker_commit_interval": 1.0}',
               "TILLSTREAM_LOGLEVEL": "warning"}
    settings, loglevel = worker_settings(["worker", "--data-dir", str(tmp_path),
                                          "--web-port", "7000"], environ)
    assert settings == Settings(broker="kafka://127.0.0.1:9092", data_dir=tmp_path,
                                web_port=7000, app_id="shop", tokens="admin:s3cret",
                                test_clock=True, pipeline="minimal",
                                faust_options={"broker_commit_interval": 1.0},
                                fetch_max_wait_ms=10)
    assert loglevel == "warning"


def test_the_command_line_wins_over_the_environment(tmp_path):
    settings, loglevel = worker_settings(
        ["worker", "--broker", "embedded://", "--partitions", "8", "--loglevel", "info"],
        {"TILLSTREAM_BROKER": "kafka://127.0.0.1:9092", "TILLSTREAM_PARTITIONS": "2",
         "TILLSTREAM_LOGLEVEL": "warning"})
    assert (settings.broker, settings.partitions, loglevel) == ("embedded://", 8, "info")
