"""Reads written once, driven two ways.

Each read of `WorkspaceGateway` is a generator of steps: it yields the GETs it needs (`Get`), receives their
answers, and returns what it read; an SDK or transport failure is thrown in at the `yield`, where the read's
`translated_errors` names what failed. `run_steps` drives a read with the blocking `ReadClient` (the Slack
flows); `run_steps_async` drives it on the fleet audit's event loop with `AsyncReadClient`, so thousands of
reads are in flight without a thread each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from bot.async_read_client import AsyncReadClient
    from bot.read_client import ReadClient

T = TypeVar("T")

BIG_ANSWER = 1 << 20
"""A text answer longer than this (characters) is handed to its read in a worker thread."""


@dataclass(frozen=True, slots=True)
class Get:
    """One GET a read needs: its answer is the decoded JSON, or with `text` the body as text (decoded from
    UTF-8 by the driver, so a big body's bytes are freed before the read parses it)."""

    path: str
    query: Mapping[str, Any] | None = None
    text: bool = False


Steps = Generator[Get, Any, T]
"""A read: yields `Get`s, receives their answers, returns its value."""


class StepRunner(Protocol):
    """Runs a read's steps on the running event loop (the audit's `run_steps_async` with its client)."""

    def __call__(self, steps: Steps[T]) -> Awaitable[T]: ...


def run_steps(steps: Steps[T], reads: Callable[[], ReadClient]) -> T:
    """Drive a read with blocking GETs; `reads()` gives the client (a failure to build it fails the read)."""
    answer: Any = None
    failure: Exception | None = None
    while not isinstance(step := _advance(steps, answer, failure), _Done):
        answer, failure = None, None
        try:
            client = reads()
            if step.text:
                answer = client.get_bytes(step.path, step.query).decode("utf-8")
            else:
                answer = client.get_json(step.path, step.query)
        except Exception as exc:
            failure = exc
    return step.value


async def run_steps_async(
    steps: Steps[T],
    reads: Callable[[], Awaitable[AsyncReadClient]],
    limit: asyncio.Semaphore,
) -> T:
    """Drive a read on the running event loop; at most `limit` GETs of the whole audit are in flight."""
    answer: Any = None
    failure: Exception | None = None
    while True:
        if isinstance(answer, str) and len(answer) > BIG_ANSWER:
            # Parsing 100,000 tokens takes a second: in a worker thread, so the loop keeps the other reads
            # moving meanwhile.
            step = await asyncio.get_running_loop().run_in_executor(None, _advance, steps, answer, None)
        else:
            step = _advance(steps, answer, failure)
        if isinstance(step, _Done):
            return step.value
        answer, failure = None, None
        try:
            client = await reads()
            async with limit:
                if step.text:
                    answer = (await client.get_bytes(step.path, step.query)).decode("utf-8")
                else:
                    answer = await client.get_json(step.path, step.query)
        except Exception as exc:
            failure = exc


@dataclass(frozen=True, slots=True)
class _Done(Generic[T]):
    value: T


def _advance(steps: Steps[T], answer: Any, failure: Exception | None) -> Get | _Done[T]:
    """The read's next GET, given the last answer (or failure), or its value as `_Done`: as a value, since a
    future (the worker thread's) cannot carry `StopIteration`."""
    try:
        return steps.send(answer) if failure is None else steps.throw(failure)
    except StopIteration as done:
        return _Done(done.value)
