"""The logging filter masks anything that looks like a Databricks or Slack token."""

from __future__ import annotations

import io
import json
import logging

from bot.logs import JsonFormatter, RedactingFilter, configure_logging, redact

DAPI = "dapi" + "0123456789abcdef" * 2


def test_redact_masks_every_token_kind() -> None:
    text = f"pat {DAPI} bot xoxb-1-2-abc app xapp-1-A1-xyz header Bearer abc.def"
    out = redact(text)
    for secret in (DAPI, "xoxb-1-2-abc", "xapp-1-A1-xyz", "abc.def"):
        assert secret not in out
    assert out.count("[REDACTED]") == 4


def test_filter_rewrites_records_and_json_lines_carry_no_secret() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("patbot-test-redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("created %s", DAPI)
        try:
            raise RuntimeError(f"boom {DAPI}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "created [REDACTED]" and lines[0]["level"] == "warning"
    assert DAPI not in stream.getvalue() and "RuntimeError" in lines[1]["exception"]


def test_configure_logging_installs_the_filter() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("DEBUG", json_lines=True)
        assert any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
