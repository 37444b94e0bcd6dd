"""`POST /v1/audio/transcriptions` end to end: the official openai SDK against the gateway on the simulator, with a
real WAV written by the standard library; failover before the answer; uploads refused early when too large."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest
import trio

from tests.audio import speech_wav
from tests.conftest import api_key, gateway_on_sim
from codex_trio.sim import running_sim

WORDS = "the quick brown fox jumps over the lazy dog"


def transcribe_requests(sim) -> list:
    return sim.requests_to("/backend-api/transcribe", "POST")


async def test_json_transcript_through_the_sdk(stack):
    result = await stack.client.audio.transcriptions.create(model="gpt-4o-transcribe",
                                                             file=("speech.wav", speech_wav(WORDS), "audio/wav"),
                                                             language="en")
    assert result.text == WORDS
    (sent,) = transcribe_requests(stack.sim)
    headers = {k.lower(): v for k, v in sent.headers}
    assert headers["originator"] == "codex_desktop" and headers["user-agent"].startswith("Codex Desktop/")
    assert sent.scheme == "https" and sent.connection.alpn is None  # the OpenSSL profile: no ALPN offered
    assert b'name="language"\r\n\r\nen\r\n' in sent.raw_body and b'name="model"' not in sent.raw_body


async def test_text_format_is_the_plain_transcript(stack):
    result = await stack.client.audio.transcriptions.create(model="whisper-1", response_format="text",
                                                             file=("speech.wav", speech_wav(WORDS), "audio/wav"))
    assert result.strip() == WORDS


async def test_verbose_json_has_language_and_duration_without_segments(stack):
    result = await stack.client.audio.transcriptions.create(model="gpt-4o-mini-transcribe",
                                                             response_format="verbose_json", language="en",
                                                             file=("speech.wav", speech_wav(WORDS, seconds=1.5),
                                                                   "audio/wav"))
    assert (result.text, result.language, result.duration) == (WORDS, "en", 1.5)
    assert not getattr(result, "segments", None)


@pytest.mark.parametrize("response_format", ["srt", "vtt"])
async def test_timestamped_formats_are_a_clear_400(stack, response_format):
    with pytest.raises(openai.BadRequestError) as caught:
        await stack.client.audio.transcriptions.create(model="whisper-1", response_format=response_format,
                                                       file=("speech.wav", speech_wav(WORDS), "audio/wav"))
    assert "timestamps" in caught.value.message and not transcribe_requests(stack.sim)


async def test_a_file_that_is_not_audio_is_a_400(stack):
    with pytest.raises(openai.BadRequestError) as caught:
        await stack.client.audio.transcriptions.create(model="whisper-1", file=("notes.wav", b"just text", "audio/wav"))
    assert "not audio" in caught.value.message and not transcribe_requests(stack.sim)


async def test_wrong_field_names_are_a_400(stack):
    async with httpx.AsyncClient(base_url=stack.url, headers={"authorization": f"Bearer {stack.key}"}) as client:
        response = await client.post("/v1/audio/transcriptions", data={"model": "whisper-1"},
                                     files={"audio": ("speech.wav", speech_wav(WORDS), "audio/wav")})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "audio" and not transcribe_requests(stack.sim)


@pytest.mark.parametrize("reply", [{"cloudflare_challenge": True}, {"rate_limit": {"resets_in_seconds": 600}},
                                   {"ban": True}])
async def test_a_refused_account_fails_over_before_the_answer(stack2, reply):
    # the first attempt, whichever account it lands on, is refused
    stack2.sim.script({"match": {"model": "transcribe"}, "times": 1, "reply": reply})
    result = await stack2.client.audio.transcriptions.create(model="whisper-1",
                                                              file=("speech.wav", speech_wav(WORDS), "audio/wav"))
    assert result.text == WORDS
    accounts = [dict((k.lower(), v) for k, v in r.headers)["chatgpt-account-id"] for r in transcribe_requests(stack2.sim)]
    assert accounts[0] != accounts[-1]


async def test_a_transient_server_error_is_retried_on_the_same_account(stack2):
    stack2.sim.script({"match": {"model": "transcribe"}, "times": 1, "reply": {"http_status": 503}})
    result = await stack2.client.audio.transcriptions.create(model="whisper-1",
                                                              file=("speech.wav", speech_wav(WORDS), "audio/wav"))
    assert result.text == WORDS
    accounts = [dict((k.lower(), v) for k, v in r.headers)["chatgpt-account-id"] for r in transcribe_requests(stack2.sim)]
    assert len(accounts) == 2 and accounts[0] == accounts[1]


async def test_an_expired_token_is_refreshed_and_the_call_repeated(stack):
    stack.sim.script({"match": {"model": "transcribe"}, "times": 1, "reply": {"http_status": 401}})
    result = await stack.client.audio.transcriptions.create(model="whisper-1",
                                                             file=("speech.wav", speech_wav(WORDS), "audio/wav"))
    assert result.text == WORDS and len(transcribe_requests(stack.sim)) == 2


async def test_the_call_is_in_the_request_log(stack):
    await stack.client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", speech_wav(WORDS), "audio/wav"))
    async with httpx.AsyncClient(base_url=stack.url, headers={"authorization": f"Bearer {stack.key}"}) as client:
        for _ in range(50):  # the record is written when the request has finished
            (record, *_) = (await client.get("/admin/logs", params={"protocol": "audio"})).json()["records"] or [None]
            if record is not None:
                break
            await trio.sleep(0.05)
    assert record["path"] == "/v1/audio/transcriptions" and record["status"] == 200, record
    assert record["model"] == "whisper-1" and record["account"], record


# ---- uploads over the cap -------------------------------------------------------------------------------------------

async def test_a_declared_oversize_upload_is_413_before_the_body_is_read(stack):
    wav = speech_wav(WORDS)
    async with httpx.AsyncClient(base_url=stack.url, headers={"authorization": f"Bearer {stack.key}"},
                                 timeout=30) as client:
        response = await client.post("/v1/audio/transcriptions", data={"model": "whisper-1"},
                                     files={"file": ("big.wav", wav + b"\0" * (27 * 1024 * 1024), "audio/wav")})
    assert response.status_code == 413 and response.headers["connection"] == "close"
    assert response.json()["error"]["code"] == "file_too_large" and not transcribe_requests(stack.sim)


async def test_a_chunked_oversize_upload_is_cut_off_at_the_cap(data_dir):
    """Chunked (no Content-Length), a 64 MiB file against a 1 MiB cap: the 413 arrives while the client is still
    sending, a few MiB past the cap at most, long before the whole upload could have been buffered."""
    async with running_sim(accounts=1) as sim:
        async with gateway_on_sim(data_dir, sim, local={"server": {"max_upload_file_mb": 1}}) as (gateway, url):
            host, port = url.removeprefix("http://").split(":")
            stream = await trio.open_tcp_stream(host, int(port))
            boundary = "b0undary"
            head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
                    "Content-Type: audio/wav\r\n\r\n").encode() + speech_wav(WORDS)
            await stream.send_all((f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {host}\r\n"
                                   f"Authorization: Bearer {api_key(gateway)}\r\nTransfer-Encoding: chunked\r\n"
                                   f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode())
            sent = 0
            answer = bytearray()

            async def send_body() -> None:
                nonlocal sent
                chunk = b"\0" * (256 * 1024)
                try:
                    await stream.send_all(b"%x\r\n%s\r\n" % (len(head), head))
                    while sent < 64 * 1024 * 1024:
                        await stream.send_all(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        sent += len(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_body)
                with trio.fail_after(30):
                    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                        data = await stream.receive_some()
                        if not data:
                            break
                        answer += data
                sent_when_answered = sent
                nursery.cancel_scope.cancel()
            await stream.aclose()
    status_line, _, rest = bytes(answer).partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer[:300]
    body = orjson.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "file_too_large"
    assert sent_when_answered < 8 * 1024 * 1024  # measured: 1.25 MiB (the cap, plus what was in flight)
