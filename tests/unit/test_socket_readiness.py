"""Socket Mode readiness: a connection down for longer than the grace period makes /readyz fail."""

from __future__ import annotations

from entrypoints.serve import socket_readiness


def test_readiness_follows_the_connection_with_a_grace_period() -> None:
    now = [0.0]
    connected = [True]
    check = socket_readiness(lambda: connected[0], grace=30, clock=lambda: now[0])
    assert check()[0] is True
    connected[0] = False
    now[0] = 29
    assert check() == (True, "ok (socket mode reconnecting)")
    now[0] = 31
    ok, detail = check()
    assert ok is False and "disconnected for 31 s" in detail
    connected[0] = True
    assert check()[0] is True
