"""`POST /v1/audio/transcriptions`: OpenAI's transcription API over the backend's dictation endpoint. Thin glue:
the upload is read by `uploads.py`, checked and answered by `protocols/transcriptions.py`, sent by
`dispatch/transcription.py`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response

from ..dispatch.transcription import transcribe_on_some_account
from ..protocols.transcriptions import encode_transcription, parse_transcription_form
from .api import json_response
from .turns import protocol_deps
from .uploads import read_upload_form

if TYPE_CHECKING:
    from .host import GatewayHost


def register_audio(app: Any, gateway: "GatewayHost") -> None:
    deps = protocol_deps(gateway)

    @app.post("/v1/audio/transcriptions")
    async def audio_transcriptions() -> Response:
        request = parse_transcription_form(await read_upload_form(deps.config, max_files=1))
        text = await transcribe_on_some_account(deps.dispatcher(), request)
        content_type, body = encode_transcription(request, text)
        if isinstance(body, str):
            return Response(body, content_type=content_type)
        return json_response(body)
