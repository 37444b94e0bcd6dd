# The Python surface of the native extension `codex_trio._native` (rust/src/py.rs). Python code reaches it
# through `codex_trio/native.py`, the typed trio facade; this stub types the boundary between the two.
# tests/native/test_stub.py checks it against the built module with mypy's stubtest, so a changed signature in
# py.rs fails a test until the stub follows.

from os import PathLike
from typing import Literal, TypeAlias, final

__all__ = ["NativeError", "NativeClient", "HttpCall", "WsCall", "version", "in_flight", "shutdown", "_panic_in_task",
           "count_tokens", "count_tokens_batch", "_release_token_counter"]

# What an upstream failure is, as `UpstreamError.kind` (rust/src/error.rs).
_ErrorKind: TypeAlias = Literal["connect", "tls", "timeout", "proxy", "protocol", "internal"]
_Headers: TypeAlias = list[tuple[str, str]]

# ("error", kind, message, status): status is set only for a refused WebSocket upgrade.
_ErrorItem: TypeAlias = tuple[Literal["error"], _ErrorKind, str, int | None]

# What `HttpCall.drain` returns items of: body chunks are bytes; everything else is a tagged tuple.
_HttpItem: TypeAlias = (
    bytes
    | tuple[Literal["head"], int, _Headers]
    | tuple[Literal["end"]]
    | tuple[Literal["complete"], int, _Headers, bytes]
    | _ErrorItem
)

# What `WsCall.drain` returns items of. "closed" carries the server's close code (None: it just hung up).
_WsItem: TypeAlias = (
    tuple[Literal["open"], _Headers]
    | tuple[Literal["text"], str]
    | tuple[Literal["binary"], bytes]
    | tuple[Literal["closed"], int | None, str]
    | _ErrorItem
)

class NativeError(Exception):
    """Raised with args (kind, message, status)."""

@final
class NativeClient:
    """One TLS stack ("openssl" or "rustls", as the real client uses them) with its connection pool; `resolve` pins
    host names to "ip:port" addresses."""

    def __new__(
        cls,
        profile: Literal["openssl", "rustls"],
        proxy: str | None,
        ca_file: str | PathLike[str] | None,
        connect_timeout: float,
        read_timeout: float | None,
        decompress: bool = False,
        resolve: list[tuple[str, str]] = ...,
    ) -> NativeClient: ...
    def start(
        self,
        method: str,
        url: str,
        headers: _Headers,
        body: bytes | None,
        zstd: bool,
        timeout: float | None,
        stream: bool,
    ) -> HttpCall:
        """Start an HTTP call. `stream=False` buffers the response into one "complete" item."""

    def start_websocket(self, url: str, headers: _Headers, deflate: bool) -> WsCall:
        """Start a WebSocket (always the rustls configuration without ALPN, as the real client)."""

@final
class HttpCall:
    """One in-flight HTTP call: an fd to wait on (readable when items are queued), and `drain()`."""

    def fileno(self) -> int: ...
    def drain(self) -> tuple[list[_HttpItem], bool]:
        """`(items, finished)`: everything queued since the last drain."""

    def cancel(self) -> None:
        """Abort the task and close its connection. Idempotent."""

@final
class WsCall:
    """One WebSocket: an fd to wait on, `drain()`, and commands to send."""

    def fileno(self) -> int: ...
    def drain(self) -> tuple[list[_WsItem], bool]:
        """`(items, finished)`: everything queued since the last drain."""

    def send_text(self, text: str) -> None: ...
    def ping(self) -> None: ...
    def close(self, code: int) -> None: ...
    def cancel(self) -> None: ...

def version() -> str:
    """The crate version (rust/Cargo.toml), the package's version."""

def in_flight() -> int:
    """Number of calls whose tokio task is still alive."""

def shutdown() -> None:
    """Stop the runtime (all tasks, all connections) and join its threads. Registered with atexit."""

def count_tokens(text: str) -> int:
    """Number of o200k_base tokens in `text`."""

def count_tokens_batch(texts: list[str]) -> list[int]: ...
def _release_token_counter() -> bool:
    """Test hook: drop the o200k table now (as an idle gateway does after a while); whether one was loaded."""
def _panic_in_task() -> HttpCall:
    """Test hook: a call whose task panics, to prove a panic surfaces as an error item."""
