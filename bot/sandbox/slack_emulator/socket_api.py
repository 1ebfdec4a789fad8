"""Socket Mode: ``apps.connections.open`` and pushing envelopes to the connected app.

The WebSocket endpoint itself is :mod:`bot.sandbox.socket_mode`, on its own port; it exists only
when the emulator was given an ``app_token``.
"""

from __future__ import annotations

from bot.sandbox.slack_emulator.records import Args, MethodHandler
from bot.sandbox.slack_emulator.state import EmulatorState
from bot.sandbox.socket_mode import SocketAck, SocketEnvelope, SocketModeServer


class SocketMixin(EmulatorState):
    """Drive a Socket Mode app: envelopes out, acks back, disconnects and drops."""

    def _socket_methods(self) -> dict[str, MethodHandler]:
        return {"apps.connections.open": self._apps_connections_open}

    def _socket_server(self) -> SocketModeServer:
        if self._socket is None:
            raise RuntimeError("Socket Mode needs SlackEmulator(app_token=...)")
        return self._socket

    def _apps_connections_open(self, args: Args) -> Args:
        # Only reached with the app token (see SlackEmulator._check_token), so the socket server exists.
        return {"url": self._socket_server().issue_url()}

    def socket_send(
        self,
        envelope_type: str,
        payload: Args,
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Push a Socket Mode envelope (``slash_commands``, ``interactive``, ``events_api``) to the
        newest connection; returns its ``envelope_id``. The payload is what Slack would POST over
        HTTP, as a JSON object (a slash command's form fields become its keys).

        ``accepts_response_payload`` defaults to Slack's (true for slash commands, view submissions
        and block suggestions). Raises :class:`RuntimeError` when no app is connected.
        """
        return self._socket_server().send(
            envelope_type,
            payload,
            envelope_id=envelope_id,
            accepts_response_payload=accepts_response_payload,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )

    def socket_acks(self, envelope_id: str | None = None) -> list[SocketAck]:
        """Acks the app sent over the socket (for one envelope, or all), oldest first."""
        return self._socket_server().acks(envelope_id)

    def wait_for_socket_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketAck:
        """Block until the app acks *envelope_id* (real-time *timeout*)."""
        return self._socket_server().wait_for_ack(envelope_id, timeout)

    def socket_envelopes(self) -> list[SocketEnvelope]:
        """Envelopes pushed with :meth:`socket_send`, oldest first."""
        return self._socket_server().envelopes()

    def socket_connected(self) -> bool:
        """Whether an app holds an open Socket Mode connection (it has had its ``hello``)."""
        return self._socket is not None and self._socket.connection_count() > 0

    def socket_connections_opened(self) -> int:
        """Socket Mode connections made so far (reconnections count)."""
        return self._socket.connections_opened if self._socket is not None else 0

    def wait_for_socket(self, timeout: float = 5.0, opened: int = 1) -> None:
        """Block until an app is connected and *opened* connections were ever made (real seconds)."""
        self._socket_server().wait_connected(timeout, opened)

    def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's ``disconnect`` message: the app should open a new connection."""
        self._socket_server().send_disconnect(reason)

    def socket_drop(self, code: int | None = None) -> None:
        """Close every Socket Mode connection (with a close frame carrying *code*, or abruptly)."""
        self._socket_server().drop_connections(code)
