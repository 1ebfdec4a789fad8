"""An in-process Slack Web API emulator: a real HTTP server for the real ``slack_sdk`` / Bolt.

Point ``slack_sdk.WebClient(token=..., base_url=emulator.api_url)`` at it. It serves
``/api/<method>`` (POST or GET, form-encoded, JSON or query parameters, token from
``Authorization: Bearer`` or a ``token`` parameter), the upload URLs handed out by
``files.getUploadURLExternal`` (``/upload/<file_id>``), ``response_url`` endpoints
(``/response/<key>``) and the ``url_private`` of uploaded files (``GET /files/<file_id>/<name>``).
Extra pages (the ``patbot demo`` simulator) can be mounted under a path prefix with
:meth:`SlackEmulator.mount`. Every call is recorded; faults (429 with ``Retry-After``, ``ok: false``
errors, latency, a per-method token bucket) can be injected.

Socket Mode: given an ``app_token`` (``xapp-…``), ``apps.connections.open`` (called with that token;
the bot token gets ``not_allowed_token_type``, any other ``invalid_auth``) answers the URL of a
WebSocket endpoint (:mod:`bot.sandbox.socket_mode`) on its own port. :meth:`SlackEmulator.socket_send`
pushes an envelope to the connected app and :meth:`SlackEmulator.socket_acks` reads its acks.

Time: the emulator's clock is ``clock()`` (default ``time.time``) sped up by ``time_scale``.
Token buckets, ``Retry-After`` values, latency and recorded times are in emulated seconds;
:meth:`SlackEmulator.sleep` waits emulated seconds, so a benchmark can inject it as the
sender's sleep and run a long campaign faster than real time.

One module per API area, each a mixin over the shared state (``state``):

- ``users``          members, user groups, ``auth.test``, ``users.*``, ``usergroups.users.list``
- ``conversations``  channels, DMs, ``conversations.open``
- ``chat``           ``chat.postMessage`` / ``update`` / ``postEphemeral``
- ``views``          ``views.publish`` / ``open`` / ``update`` (a new view replaces the old one whole)
- ``files``          the three-step upload and ``url_private``
- ``response_url``   ``response_url`` endpoints
- ``socket_api``     Socket Mode
- ``faults``         injected 429s, errors, latency, token buckets
- ``recording``      recorded calls, waiting for them, clearing
- ``routing``        the HTTP routing; ``emulator`` joins it all into :class:`SlackEmulator`
"""

from bot.sandbox.slack_emulator.emulator import SlackEmulator
from bot.sandbox.slack_emulator.records import (
    Ephemeral,
    Message,
    RecordedCall,
    ResponsePost,
    SlackError,
    UploadedFile,
    User,
    UserGroup,
    WebRequest,
    WebResponse,
    WebRoute,
)
from bot.sandbox.socket_mode import SocketAck, SocketEnvelope

__all__ = [
    "Ephemeral",
    "Message",
    "RecordedCall",
    "ResponsePost",
    "SlackEmulator",
    "SlackError",
    "SocketAck",
    "SocketEnvelope",
    "UploadedFile",
    "User",
    "UserGroup",
    "WebRequest",
    "WebResponse",
    "WebRoute",
]
