"""Learning new Codex releases from the release feed (a local stand-in for the npm registry document): a
release with a verified profile is adopted, one without is reported (log, doctor, admin API) and the gateway
keeps presenting the newest verified release."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import httpx
import orjson
import pytest
import trio

from codex_trio.upstream.identity import load_fingerprint
from codex_trio.upstream.versions import check_release, decide, feed_version, newer
from tests.conftest import api_key, running_gateway

FINGERPRINT = load_fingerprint()


def test_only_plain_newer_releases_are_considered():
    assert feed_version(b'{"name":"@openai/codex","version":"0.170.0"}') == "0.170.0"
    assert feed_version(b'{"version":"0.171.0-alpha.2"}') is None
    assert feed_version(b"not json") is None and feed_version(b"[]") is None
    assert newer("0.170.0", "0.169.0") and newer("1.0.0", "0.169.9")
    assert not newer("0.169.0", "0.169.0") and not newer("0.99.0", "0.169.0") and not newer(None, "0.169.0")


@pytest.mark.parametrize(("latest", "current", "adopt", "unverified"), [
    ("0.171.0", "0.169.0", "0.171.0", None),     # a verified release: adopted
    ("0.172.0", "0.171.0", None, "0.172.0"),     # no profile: reported, not adopted
    ("0.172.0", "0.169.0", "0.171.0", "0.172.0"),  # the newest verified one it may present, and the report
    ("0.170.0", "0.169.0", None, "0.170.0"),     # a release between the verified ones
    ("0.101.0", "0.171.0", None, None),          # older: nothing
    ("0.171.0", "0.170.1", "0.171.0", None),     # a version adopted before profiles existed is put right
])
def test_decisions(latest, current, adopt, unverified):
    decision = decide(latest, current, FINGERPRINT)
    assert (decision.adopt, decision.unverified) == (adopt, unverified)


async def serve_feed(body: bytes, seen: list[bytes], stream: trio.SocketStream) -> None:
    request = await stream.receive_some(65536)
    seen.append(request)
    await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                          b"connection: close\r\n\r\n%s" % (len(body), body))
    await stream.aclose()


async def start_feed(nursery, version: str, seen: list[bytes]) -> str:
    body = orjson.dumps({"name": "@openai/codex", "version": version})
    listeners = await nursery.start(partial(trio.serve_tcp, partial(serve_feed, body, seen), 0, host="127.0.0.1"))
    return f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/@openai/codex/latest"


async def wait_for(condition, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


async def test_a_release_with_a_verified_profile_is_adopted_with_its_wire(data_dir: Path, nursery):
    seen: list[bytes] = []
    feed = await start_feed(nursery, "0.171.0", seen)
    local = {"client": {"version": "0.169.0", "learn_versions": True, "release_feed_url": feed}}
    async with running_gateway(data_dir, local=local, install=True) as (gateway, url):
        await wait_for(lambda: gateway.services.connector.identity.version == "0.171.0")
        assert gateway.config.settings.client.version == "0.171.0"
        assert gateway.services.connector.identity.accept_encoding == "zstd,gzip"  # the version came with its wire
        assert "version: 0.171.0" in (data_dir / "local.yaml").read_text()
        assert await check_release(gateway) is None  # nothing newer on a second look
    assert seen and seen[0].startswith(b"GET /@openai/codex/latest HTTP/1.1")


async def test_a_release_without_a_profile_is_reported_and_not_adopted(data_dir: Path, nursery, caplog):
    seen: list[bytes] = []
    feed = await start_feed(nursery, "0.172.0", seen)
    local = {"client": {"learn_versions": True, "release_feed_url": feed}}
    caplog.set_level(logging.WARNING, logger="codex_trio.upstream.versions")
    async with running_gateway(data_dir, local=local, install=True) as (gateway, url):
        await wait_for(lambda: (data_dir / "release-watch.json").exists())
        assert gateway.config.settings.client.version == "0.171.0"
        assert gateway.services.connector.identity.version == "0.171.0"
        assert "version: 0.172.0" not in (data_dir / "local.yaml").read_text()
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {api_key(gateway)}"}) as http:
            report = (await http.get("/admin/release-watch")).json()
        assert report["presented_version"] == "0.171.0"
        assert report["verified_releases"] == ["0.169.0", "0.171.0"]
        assert report["last_check"]["latest"] == "0.172.0" and report["last_check"]["unverified"] == "0.172.0"
        assert report["last_check"]["message"].startswith("release 0.172.0 seen, no verified profile")
    assert any("release 0.172.0 seen, no verified profile" in r.getMessage() for r in caplog.records)

    # doctor (another process) shows it too, as a problem with what to do about it
    doctor = subprocess.run([sys.executable, "-m", "codex_trio.cli", "doctor", "--data-dir", str(data_dir)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PORT": "0"})
    assert "[PROBLEM] release 0.172.0 seen, no verified profile: presenting Codex 0.171.0" in doctor.stdout
    assert "[ok] presenting Codex 0.171.0 (verified releases: 0.169.0, 0.171.0)" in doctor.stdout
    assert json.loads((data_dir / "release-watch.json").read_text())["presented"] == "0.171.0"


def test_doctor_names_a_configured_version_without_a_profile(data_dir: Path):
    (data_dir / "local.yaml").write_text("client:\n  version: 0.170.1\n")
    doctor = subprocess.run([sys.executable, "-m", "codex_trio.cli", "doctor", "--data-dir", str(data_dir)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PORT": "0"})
    assert ("[PROBLEM] client.version 0.170.1 has no verified profile (known: 0.169.0, 0.171.0); presenting Codex "
            "0.171.0") in doctor.stdout
