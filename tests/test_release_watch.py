"""Learning new Codex versions from the release feed (a local stand-in for the npm registry document)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import orjson
import pytest
import trio

from codex_trio.upstream.versions import check_release, feed_version, newer
from tests.conftest import running_gateway


def test_only_plain_newer_releases_are_adopted():
    assert feed_version(b'{"name":"@openai/codex","version":"0.170.0"}') == "0.170.0"
    assert feed_version(b'{"version":"0.171.0-alpha.2"}') is None
    assert feed_version(b"not json") is None and feed_version(b"[]") is None
    assert newer("0.170.0", "0.169.0") and newer("1.0.0", "0.169.9")
    assert not newer("0.169.0", "0.169.0") and not newer("0.99.0", "0.169.0") and not newer(None, "0.169.0")


async def serve_feed(body: bytes, seen: list[bytes], stream: trio.SocketStream) -> None:
    request = await stream.receive_some(65536)
    seen.append(request)
    await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                          b"connection: close\r\n\r\n%s" % (len(body), body))
    await stream.aclose()


@pytest.mark.parametrize(("feed", "expected"), [("0.170.1", "0.170.1"), ("0.101.0", "0.169.0"),
                                                ("0.180.0-beta.1", "0.169.0")])
async def test_the_gateway_adopts_a_newer_release_and_persists_it(data_dir: Path, nursery, feed, expected):
    seen: list[bytes] = []
    body = orjson.dumps({"name": "@openai/codex", "version": feed})
    listeners = await nursery.start(partial(trio.serve_tcp, partial(serve_feed, body, seen), 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    local = {"client": {"learn_versions": True, "release_feed_url": f"http://127.0.0.1:{port}/@openai/codex/latest"}}
    async with running_gateway(data_dir, local=local, install=True) as (gateway, url):
        # the background job reads the feed as soon as the gateway starts
        with trio.fail_after(10):
            while not seen or (expected == feed and gateway.config.settings.client.version != feed):
                await trio.sleep(0.01)
        if expected != feed:
            await trio.sleep(0.3)  # time in which a wrong adoption would have shown
        assert gateway.config.settings.client.version == expected
        assert await check_release(gateway) is None  # nothing newer on a second look
        assert gateway.services.identity.version == expected
        assert (f"version: {expected}" in (data_dir / "local.yaml").read_text()) == (expected == feed)
    assert seen and seen[0].startswith(b"GET /@openai/codex/latest HTTP/1.1")
