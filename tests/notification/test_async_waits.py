"""Listeners waited for on an event loop: the signal's task waiters and shared reads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from tideflow.domain.events import Event
from tideflow.notification.filters import EventFilter
from tideflow.notification.listener import Listener
from tideflow.notification.signal import OffsetSignal
from tideflow.rpc.interceptor import Raw
from tideflow.rpc.servicers.notification import SharedReads, SharedResponses
from tideflow.rpc.v1.notification_pb2 import ListenResponse

DEADLINE = 30.0


def test_a_publish_from_another_thread_wakes_only_the_tasks_it_satisfies() -> None:
    signal = OffsetSignal(latest=5)

    async def main() -> tuple[int, bool]:
        low = asyncio.ensure_future(signal.wait_beyond_async(5, DEADLINE))
        high = asyncio.ensure_future(signal.wait_beyond_async(9, 0.3))
        while signal.waiters < 2:
            await asyncio.sleep(0)
        threading.Thread(target=signal.publish, args=(7,)).start()
        woke = await asyncio.wait_for(low, DEADLINE)
        still_waiting = not high.done()
        assert await asyncio.wait_for(high, DEADLINE) == 7  # its timeout, not the publish
        return woke, still_waiting

    woke, still_waiting = asyncio.run(main())
    assert woke == 7
    assert still_waiting
    assert signal.waiters == 0


def test_a_satisfied_or_closed_signal_does_not_wait_and_close_wakes_tasks() -> None:
    signal = OffsetSignal(latest=3)

    async def main() -> int:
        assert await signal.wait_beyond_async(2, DEADLINE) == 3  # already beyond: no wait
        waiting = asyncio.ensure_future(signal.wait_beyond_async(3, DEADLINE))
        while signal.waiters < 1:
            await asyncio.sleep(0)
        threading.Thread(target=signal.close).start()
        return await asyncio.wait_for(waiting, DEADLINE)

    assert asyncio.run(main()) == 3
    assert signal.closed
    assert signal.waiters == 0


def _event(offset: int) -> Event:
    return Event(key="k", value=str(offset), offset=offset, namespace="p")


def test_listeners_at_one_position_share_one_read_and_each_gets_the_events() -> None:
    reads: list[int] = []
    gate = threading.Event()

    def fetch(flt: EventFilter, after: int, limit: int) -> tuple[list[Event], int]:
        reads.append(after)
        gate.wait(DEADLINE)  # every listener asks while the first read runs
        return [_event(after + 1)], after + 1

    signal = OffsetSignal(latest=1)
    same = [
        Listener(fetch, signal, EventFilter(), 0, share_key=("p", EventFilter())) for _ in range(50)
    ]
    alone = Listener(fetch, signal, EventFilter(), 0)  # no key: reads for itself

    async def main() -> list[list[Event]]:
        shared = SharedReads(pool)
        polls = [asyncio.ensure_future(x.poll_async(DEADLINE, shared.read)) for x in [*same, alone]]
        while len(reads) < 2:
            await asyncio.sleep(0.01)
        gate.set()
        return list(await asyncio.wait_for(asyncio.gather(*polls), DEADLINE))

    with ThreadPoolExecutor(4) as pool:
        results = asyncio.run(main())
    assert reads == [0, 0]  # one shared read, one of its own
    assert all([e.offset for e in got] == [1] for got in results)
    assert all(listener.last_offset == 1 for listener in [*same, alone])


def test_a_listener_with_nothing_new_waits_for_the_next_publish() -> None:
    log: list[Event] = []

    def fetch(flt: EventFilter, after: int, limit: int) -> tuple[list[Event], int]:
        return [e for e in log if e.offset > after], len(log)

    signal = OffsetSignal(latest=0)
    listener = Listener(fetch, signal, EventFilter(), 0)

    async def main() -> list[Event]:
        with ThreadPoolExecutor(2) as pool:
            polling = asyncio.ensure_future(listener.poll_async(DEADLINE, SharedReads(pool).read))
            while signal.waiters < 1:
                await asyncio.sleep(0.01)
            log.append(_event(1))
            threading.Thread(target=signal.publish, args=(1,)).start()
            return await asyncio.wait_for(polling, DEADLINE)

    assert [e.offset for e in asyncio.run(main())] == [1]


def test_inline_reads_serve_the_streams_of_one_turn_from_one_read() -> None:
    reads: list[int] = []

    def fetch(flt: EventFilter, after: int, limit: int) -> tuple[list[Event], int]:
        reads.append(after)
        return [_event(after + 1)], after + 1

    signal = OffsetSignal(latest=2)
    key = ("p", EventFilter())
    same = [Listener(fetch, signal, EventFilter(), 0, share_key=key) for _ in range(50)]

    async def main() -> list[list[list[Event]]]:
        shared = SharedReads(None, inline=True)
        rounds = []
        for _ in range(2):  # the second turn reads again: results live for one turn only
            polls = [x.poll_async(DEADLINE, shared.read) for x in same]
            rounds.append(list(await asyncio.gather(*polls)))
        return rounds

    first, second = asyncio.run(main())
    assert reads == [0, 1]
    assert all([e.offset for e in got] == [1] for got in first)
    assert all([e.offset for e in got] == [2] for got in second)


def test_the_streams_of_one_turn_send_the_same_serialised_responses() -> None:
    events = [_event(1), _event(2)]

    async def main() -> tuple[list[Raw], list[Raw], list[Raw]]:
        shared = SharedResponses()
        first, again = shared.of(events), shared.of(events)
        await asyncio.sleep(0)  # the next turn of the loop converts anew
        return first, again, shared.of(events)

    first, again, next_turn = asyncio.run(main())
    assert again is first
    assert next_turn is not first
    assert [r.data for r in next_turn] == [r.data for r in first]
    decoded = ListenResponse.FromString(first[0].data)
    assert [e.offset for e in decoded.events] == [1, 2]
