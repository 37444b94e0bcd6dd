"""`RequestTasks.start` (server/request_tasks.py): what `nursery.start` promised the streamed routes, without the
nursery it opens per start — the value reported, a failure before it raised to the starter, the task cancelled
when the request ends, and a failure after it kept out of the app's nursery."""

from __future__ import annotations

import logging

import pytest
import trio

from codex_trio.server.request_tasks import RequestTasks


class Refused(Exception):
    pass


async def test_the_starter_gets_the_reported_value_while_the_task_goes_on():
    went_on = trio.Event()

    async def task(task_status):
        task_status.started("open")
        went_on.set()

    async with trio.open_nursery() as nursery:
        assert await RequestTasks().start(nursery, task) == "open"
        with trio.fail_after(5):
            await went_on.wait()


async def test_a_failure_before_it_started_is_raised_to_the_starter_not_the_nursery():
    async def task(task_status):
        await trio.sleep(0)
        raise Refused("no account")

    async with trio.open_nursery() as nursery:
        with pytest.raises(Refused, match="no account"):
            await RequestTasks().start(nursery, task)
        nursery.start_soon(trio.sleep, 0)  # the nursery is still usable: the failure did not reach it


async def test_a_task_that_ends_without_starting_is_an_error_for_the_starter():
    async def task(task_status):
        return None

    async with trio.open_nursery() as nursery:
        with pytest.raises(RuntimeError):  # as `nursery.start` does
            await RequestTasks().start(nursery, task)


async def test_the_request_ending_cancels_its_started_task():
    cancelled = trio.Event()

    async def task(task_status):
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    async with trio.open_nursery() as nursery:
        tasks = RequestTasks()
        await tasks.start(nursery, task)
        tasks.end()
        with trio.fail_after(5):
            await cancelled.wait()


async def test_the_starter_is_answered_when_its_task_is_cancelled_before_starting():
    answers: list[BaseException] = []

    async def task(task_status):
        await trio.sleep_forever()

    async def request(app_nursery: trio.Nursery) -> None:  # the request's own task, outside the app's nursery
        try:
            await RequestTasks().start(app_nursery, task)
        except BaseException as exc:  # noqa: BLE001 - whatever the starter gets is what the test checks
            answers.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as request_nursery:
            async with trio.open_nursery() as app_nursery:
                request_nursery.start_soon(request, app_nursery)
                await trio.sleep(0.05)
                app_nursery.cancel_scope.cancel()  # the app shuts down under the waiting request
    assert len(answers) == 1 and isinstance(answers[0], RuntimeError), answers
    assert "cancelled before it started" in str(answers[0])


async def test_a_failure_after_it_started_is_logged_and_kept_from_the_nursery(caplog):
    async def task(task_status):
        task_status.started()
        await trio.sleep(0)
        raise Refused("broke mid-stream")

    with caplog.at_level(logging.ERROR, logger="codex_trio.server.request_tasks"):
        async with trio.open_nursery() as nursery:
            await RequestTasks().start(nursery, task)
    assert "a task of a request failed" in caplog.text
