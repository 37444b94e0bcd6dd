"""The native transport (`codex_trio.native`) is built on another branch. Until it is merged, install a
stand-in module with the two names transport.py imports, so the transport's state-machine tests can run
against the in-test fake client. Once the real module exists it is used and this does nothing."""

from __future__ import annotations

import sys
import types

try:
    import codex_trio.native  # noqa: F401
except ImportError:
    stub = types.ModuleType("codex_trio.native")

    class UpstreamError(Exception):
        pass

    class Client:  # only a name for annotations; tests pass fake_native.FakeClient
        pass

    stub.UpstreamError = UpstreamError
    stub.Client = Client
    sys.modules["codex_trio.native"] = stub
