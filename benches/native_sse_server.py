"""Local HTTP/1.1 server for the native transport benchmarks (127.0.0.1, keep-alive, no TLS).

  GET /sse?n=N&size=S  → chunked text/event-stream with N events of S bytes, one write per event
  GET /small           → a 40-byte JSON body

Run in its own process so its CPU time is not counted against the client: it prints the port.
"""

from __future__ import annotations

import sys
from urllib.parse import parse_qs, urlsplit

import trio


async def handle(stream: trio.SocketStream) -> None:
    buffer = bytearray()
    try:
        while True:
            while b"\r\n\r\n" not in buffer:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data
            end = buffer.index(b"\r\n\r\n") + 4
            request_line = bytes(buffer[: buffer.index(b"\r\n")]).decode()
            del buffer[:end]
            target = urlsplit(request_line.split(" ")[1])
            if target.path == "/sse":
                query = parse_qs(target.query)
                count, size = int(query["n"][0]), int(query["size"][0])
                event = b"data: " + b"x" * max(0, size - 8) + b"\n\n"
                frame = b"%x\r\n%s\r\n" % (len(event), event)
                await stream.send_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                )
                for _ in range(count):
                    await stream.send_all(frame)
                await stream.send_all(b"0\r\n\r\n")
            else:
                body = b'{"object":"list","data":[],"ok":true}\n'
                await stream.send_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


async def main() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(handle, listeners)


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(0)
