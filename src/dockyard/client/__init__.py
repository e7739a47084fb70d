"""Typed Engine API client over a unix socket (a small HTTP/1.1 of our own, fast to import).

``Client`` has one method per endpoint; ``streams`` holds the framing helpers
(multiplexed frames, JSON progress, hijacked sockets); ``transport`` picks the daemon
(``-H``, ``DOCKYARD_HOST``, ``DOCKER_HOST``, default socket).
"""

from .api import (
    API_VERSION,
    MIN_API_VERSION,
    Client,
    PingResult,
    ProtocolError,
    Response,
    StreamResponse,
    WaitHandle,
    error_for_status,
    is_response_error,
    version_less,
)
from .streams import (
    FrameDecoder,
    HijackedStream,
    JSONMessageDecoder,
    StreamError,
    demux,
    encode_frame,
    iter_json_messages,
)
from .transport import (
    DEFAULT_HOST,
    ConnectionFailed,
    Endpoint,
    UnixHTTPConnection,
    parse_host,
    resolve_host,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_HOST",
    "MIN_API_VERSION",
    "Client",
    "ConnectionFailed",
    "Endpoint",
    "FrameDecoder",
    "HijackedStream",
    "JSONMessageDecoder",
    "PingResult",
    "ProtocolError",
    "Response",
    "StreamError",
    "StreamResponse",
    "UnixHTTPConnection",
    "WaitHandle",
    "demux",
    "encode_frame",
    "error_for_status",
    "is_response_error",
    "iter_json_messages",
    "parse_host",
    "resolve_host",
    "version_less",
]
