"""The simulator's `POST /backend-api/transcribe`, exactly as strict as the transcription spec (read from public
clients, not captured): reached with the gateway's own OpenSSL client, as the gateway reaches it."""

from __future__ import annotations

import httpx
import orjson
import pytest

from codex_trio.native import Client
from codex_trio.sim.transcribe import MAX_FILE_BYTES
from codex_trio.upstream.context import AccountAuth
from codex_trio.upstream.identity import Identity, load_fingerprint
from codex_trio.upstream.transcribe import multipart_body, transcribe_headers
from tests.audio import speech_wav

IDENTITY = Identity.from_config(load_fingerprint(), "codex-exec")


async def post(sim, body: bytes, content_type: str, *, drop: str | None = None, account=None):
    account = account or sim.accounts[0]
    headers = [h for h in transcribe_headers(IDENTITY, AccountAuth(account.access_token, account.account_id),
                                             content_type) if h[0] != drop]
    client = Client(profile="openssl", ca_file=sim.ca_file)
    return await client.request("POST", f"{sim.urls.backend_base}/transcribe", headers, body)


async def test_a_wav_is_transcribed_to_its_embedded_words(sim):
    body, content_type = multipart_body(speech_wav("hello from the test"), "speech.wav", "audio/wav", "en")
    response = await post(sim, body, content_type)
    assert response.status == 200, bytes(response.body)
    assert orjson.loads(response.body) == {"text": "hello from the test"}


@pytest.mark.parametrize("drop", ["originator", "user-agent"])
async def test_without_the_desktop_identity_it_is_refused(sim, drop):
    body, content_type = multipart_body(speech_wav("x"), "speech.wav", "audio/wav", None)
    response = await post(sim, body, content_type, drop=drop)
    assert response.status == 403


async def test_a_model_field_is_refused(sim):
    body, content_type = multipart_body(speech_wav("x"), "speech.wav", "audio/wav", None)
    body = body.replace(b'name="file"', b'name="model"\r\n\r\nwhisper-1\r\n--' + content_type.split("=")[1].encode()
                        + b'\r\nContent-Disposition: form-data; name="file"', 1)
    response = await post(sim, body, content_type)
    assert response.status == 400 and b"model" in bytes(response.body)


@pytest.mark.parametrize("audio,kind", [(b"not audio at all", "audio/wav"), (speech_wav("x"), "text/plain")])
async def test_a_file_that_is_not_audio_is_refused(sim, audio, kind):
    body, content_type = multipart_body(audio, "speech.wav", kind, None)
    assert (await post(sim, body, content_type)).status == 400


async def test_a_file_over_25_mib_is_413(sim):
    audio = speech_wav("x")
    body, content_type = multipart_body(audio + b"\0" * (MAX_FILE_BYTES - len(audio) + 1), "big.wav", "audio/wav",
                                        None)
    assert (await post(sim, body, content_type)).status == 413


async def test_a_client_hello_with_alpn_gets_the_cloudflare_challenge(sim):
    """httpx (like the rustls profile) offers ALPN; only the OpenSSL hello, which offers none, passes."""
    account = sim.accounts[0]
    body, content_type = multipart_body(speech_wav("x"), "speech.wav", "audio/wav", None)
    headers = dict(transcribe_headers(IDENTITY, AccountAuth(account.access_token, account.account_id), content_type))
    async with httpx.AsyncClient(verify=sim.ssl_context(), timeout=10) as client:
        response = await client.post(f"{sim.urls.backend_base}/transcribe", content=body, headers=headers)
    assert response.status_code == 403 and response.headers["cf-mitigated"] == "challenge"


async def test_a_bad_token_is_401(sim):
    body, content_type = multipart_body(speech_wav("x"), "speech.wav", "audio/wav", None)
    client = Client(profile="openssl", ca_file=sim.ca_file)
    headers = [("authorization", "Bearer nope"), *transcribe_headers(IDENTITY, AccountAuth("x", ""), content_type)[1:]]
    response = await client.request("POST", f"{sim.urls.backend_base}/transcribe", headers, body)
    assert response.status == 401
