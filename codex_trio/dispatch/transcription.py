"""One transcription on some account: chosen by the pool like a turn (rotation, quota, cooldowns), refreshed on a
401, failed over on a rate limit, a ban, a Cloudflare block or a broken connection — all before the client has
received anything, since the answer is one JSON document. A client's own mistake is relayed at once.

The dispatcher's rules for what a failure says about an account (`Dispatcher.account_failed`) apply unchanged;
only the call differs (`upstream/transcribe.py`, on the account's OpenSSL client with its Cloudflare cookies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ..errors import ErrorKind, GatewayError
from ..native import UpstreamError
from ..protocols.transcriptions import TranscriptionRequest, transcript_text
from ..telemetry.recorder import current_recorder
from ..turn import Turn
from ..upstream.errors import Action
from ..upstream.transcribe import transcribe
from ..upstream.transport import UpstreamFailed
from .dispatcher import CLIENT_MISTAKES, MAX_ACCOUNTS_TRIED, SAME_ACCOUNT_RETRIES, Dispatcher, unreachable

if TYPE_CHECKING:
    from ..accounts.pool import Lease


async def _call(dispatcher: Dispatcher, lease: "Lease", request: TranscriptionRequest) -> str:
    connector = dispatcher.connector
    account = lease.account
    cookies = connector.cookie_jar_for(account)
    current_recorder().sending()
    try:
        answer = await transcribe(connector.clients_for(account).http, connector.identity, connector.endpoint,
                                  connector.auth_for(account), audio=request.audio, filename=request.filename,
                                  content_type=request.content_type, language=request.language,
                                  clock=connector.clock, cookies=cookies)
    finally:  # a challenge's cookies too: they are what lets the next call through
        await connector.save_cookies(account, cookies)
    return transcript_text(answer)


async def _on_one_account(dispatcher: Dispatcher, lease: "Lease", request: TranscriptionRequest) -> str:
    """The transcript; `_Refused` with the error to fail over with. Like a turn: a 401 is refreshed and a transient
    5xx retried on the same account first."""
    for attempt in range(SAME_ACCOUNT_RETRIES + 1):
        try:
            return await _call(dispatcher, lease, request)
        except UpstreamFailed as exc:
            failure = exc.failure
            if failure.action in CLIENT_MISTAKES:
                raise failure.to_gateway_error(dispatcher.now()) from None
            if failure.action is Action.REFRESH and attempt < SAME_ACCOUNT_RETRIES and await lease.mark_token_invalid():
                continue  # a fresh token, same account
            if failure.action is Action.RETRY and attempt < SAME_ACCOUNT_RETRIES:  # a transient 5xx: 1 s, 2 s
                await trio.sleep(failure.retry_after or attempt + 1)
                continue
            await dispatcher.account_failed(lease, failure)
            raise _Refused(failure.to_gateway_error(dispatcher.now())) from None
        except UpstreamError as exc:
            raise _Refused(unreachable(exc, lease.account.id)) from None
    raise _Refused(GatewayError(502, "The transcription backend kept refusing the account's token.",
                                ErrorKind.UPSTREAM, code="upstream_auth_failed"))


async def transcribe_on_some_account(dispatcher: Dispatcher, request: TranscriptionRequest) -> str:
    recorder = current_recorder()
    recorder.admit(Turn(request={"model": request.model}, requested_model=request.model, stream=False))
    pool = dispatcher.pool
    excluded: set[str] = set()
    last_error: GatewayError | None = None
    for _ in range(MAX_ACCOUNTS_TRIED):
        try:
            async with pool.acquire(exclude=excluded) as lease:
                try:
                    text = await _on_one_account(dispatcher, lease, request)
                except _Refused as refused:
                    recorder.failed_over(lease.account.id, refused.error)
                    excluded.add(lease.account.id)
                    last_error = refused.error
                    continue
                recorder.opened(lease.account.id, request.model, "https")
                recorder.closed(None, None)
                return text
        except GatewayError as exc:
            if last_error is not None and exc.kind in (ErrorKind.OVERLOADED, ErrorKind.RATE_LIMIT):
                raise GatewayError(last_error.status, f"{last_error.message} (and no account is left to retry on: "
                                   f"{exc.message})", last_error.kind, code=last_error.code,
                                   retry_after=exc.retry_after or last_error.retry_after) from None
            raise
    raise last_error or GatewayError(503, "No account could serve the request.", ErrorKind.OVERLOADED)


class _Refused(Exception):
    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error
