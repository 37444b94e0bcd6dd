"""The turn pump's own rules, on a scripted upstream turn (the dispatcher's `UpstreamTurn` interface) and the real
shutdown coordinator, in virtual time. The routes that use it are tested end to end in tests/e2e."""

from __future__ import annotations

import pytest
import trio

from codex_trio.dispatch.pump import CLOSE_DEADLINE_SECONDS, Collected, Ending, TurnPump, discard
from codex_trio.errors import GatewayError
from codex_trio.server.shutdown import ShutdownCoordinator
from codex_trio.upstream.events import CodexEvent

DELTA = CodexEvent("response.output_text.delta", {"delta": "hi", "item_id": "m"})
COMPLETED = CodexEvent("response.completed", {"response": {"id": "resp_1", "status": "completed"}})


class ScriptedTurn:
    account_id, model, forward_headers = "scripted", "scripted", []

    def __init__(self, batches: list[list[CodexEvent]], *, hang_after: bool = False, close_hangs: bool = False):
        self._batches, self._hang_after, self._close_hangs = batches, hang_after, close_hangs
        self.closed = False

    async def batches(self):
        for batch in self._batches:
            yield batch
        if self._hang_after:
            await trio.sleep_forever()

    async def aclose(self) -> None:
        if self._close_hangs:
            await trio.sleep_forever()
        self.closed = True


class Frames:
    """A TurnOutput that names what it was asked to write."""

    stopped = False

    def start(self):
        return []

    def feed(self, event, normalized):
        return [event.type]

    def finish(self):
        return ["finish"]

    def fail(self, error: GatewayError):
        return [f"fail:{error.code}"]


def pump_of(upstream, shutdown=None, opened: list | None = None) -> TurnPump:
    async def open_turn(_turn):
        if opened is not None:
            opened.append(upstream)
        return upstream

    return TurnPump(open_turn, shutdown or ShutdownCoordinator())


async def test_a_turn_ends_with_its_protocols_ending_and_is_closed_by_the_pump():
    upstream, sent = ScriptedTurn([[DELTA], [COMPLETED]]), []

    async def send(frames):
        sent.extend(frames)

    assert await pump_of(upstream).run(None, Frames(), send) is Ending.COMPLETED
    assert sent == ["response.output_text.delta", "response.completed", "finish"] and upstream.closed


async def test_an_upstream_that_ends_without_a_terminal_event_gets_the_failure_frame():
    upstream, sent = ScriptedTurn([[DELTA]]), []

    async def send(frames):
        sent.extend(frames)

    assert await pump_of(upstream).run(None, Frames(), send) is Ending.FAILED
    assert sent[-1] == "fail:premature_close" and upstream.closed


async def test_a_collected_reply_raises_the_failure():
    upstream = ScriptedTurn([[DELTA]])
    with pytest.raises(GatewayError) as failure:
        await pump_of(upstream).run(None, Collected(), discard, cuttable=False)
    assert failure.value.code == "premature_close" and upstream.closed


async def test_a_close_that_hangs_is_abandoned_after_its_deadline(autojump_clock):
    """The clean-up is shielded (a cancelled request still releases its account) but never waits forever."""
    upstream = ScriptedTurn([[DELTA]], hang_after=True, close_hangs=True)
    begin = trio.current_time()
    with trio.move_on_after(1):  # the client goes away after a second
        await pump_of(upstream).run(None, Frames(), discard)
    elapsed = trio.current_time() - begin
    assert 1 + CLOSE_DEADLINE_SECONDS <= elapsed < 1 + CLOSE_DEADLINE_SECONDS + 1  # shielded, up to its deadline
    assert not upstream.closed


async def test_shutdown_cuts_a_silent_turn_with_its_failure_frame(autojump_clock):
    shutdown, upstream, sent = ShutdownCoordinator(), ScriptedTurn([[DELTA]], hang_after=True), []

    async def send(frames):
        sent.extend(frames)

    async with trio.open_nursery() as nursery:
        async def serve():
            assert await pump_of(upstream, shutdown).run(None, Frames(), send) is Ending.CUT

        nursery.start_soon(serve)
        await trio.sleep(1)
        assert shutdown.open_streams == 1
        assert await shutdown.drain(5) == 1
    assert sent == ["response.output_text.delta", "fail:server_shutting_down"] and upstream.closed
    assert shutdown.open_streams == 0


async def test_the_pump_closes_the_batches_it_stopped_reading():
    """It stops at the terminal event, before the upstream's generator ends; left to the garbage collector, trio
    would finalize every turn's generator with a ResourceWarning and a wake-up of its own (issue #20)."""
    upstream, steps = ScriptedTurn([[DELTA], [COMPLETED], [DELTA]]), []

    class Watched(ScriptedTurn):
        async def batches(self):
            try:
                async for batch in upstream.batches():
                    yield batch
            finally:
                steps.append("generator closed")

    async def send(frames):
        steps.extend(frames)

    async def open_turn(_turn):
        return Watched([])

    assert await TurnPump(open_turn, ShutdownCoordinator()).run(None, Frames(), send) is Ending.COMPLETED
    # closed before the turn's ending went out, by the pump itself (not some time later by the collector)
    assert steps == ["response.output_text.delta", "response.completed", "generator closed", "finish"]
