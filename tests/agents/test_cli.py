"""The worker the CLI builds."""

from __future__ import annotations

import logging

import pytest

from agents.cli import build_worker
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
