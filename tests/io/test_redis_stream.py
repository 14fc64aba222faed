import threading

import pytest

from tideflow.errors import UnavailableError
from tideflow.io.redis_stream import (
    RedisStreamReader,
    RedisStreamWriter,
    redis_id,
    redis_offset,
)


def rows(start: int, stop: int) -> list[dict]:
    return [{"i": i, "ad": f"a{i % 3}"} for i in range(start, stop)]


def test_offsets_map_entry_ids_both_ways():
    assert redis_offset("1714000000123-7") == 1714000000123000007
    assert redis_id(1714000000123000007) == "1714000000123-7"
    assert redis_offset("5-0") < redis_offset("5-1") < redis_offset("6-0")


def test_write_then_read_in_order(redis_client, stream_key):
    with RedisStreamWriter(stream_key, client=redis_client, dataset="clicks") as writer:
        written = writer.write(rows(0, 30))
    assert redis_client.xlen(stream_key) == 30
    reader = RedisStreamReader(
        stream_key, group="train-clicks", client=redis_client, dataset="clicks"
    )
    batches = list(reader.batches(max_records=8, idle_timeout=0))
    assert [len(b) for b in batches] == [8, 8, 8, 6]
    assert [r for b in batches for r in b.records] == rows(0, 30)
    assert batches[0].start_offset == written.start_offset
    assert batches[-1].end_offset == written.end_offset
    assert reader.read_range().end_offset == written.end_offset
    assert reader.pending() == 0  # every batch acknowledged


def test_stop_and_resume_nothing_lost_or_repeated(redis_client, stream_key):
    RedisStreamWriter(stream_key, client=redis_client).write(rows(0, 50))
    stop = threading.Event()
    seen = []
    first = RedisStreamReader(stream_key, group="g", client=redis_client)
    for batch in first.batches(max_records=6, stop=stop):
        seen.extend(batch.records)
        if len(seen) >= 20:
            stop.set()
    assert len(seen) == 24
    second = RedisStreamReader(stream_key, group="g", client=redis_client)
    rest = [r for b in second.batches(max_records=6, idle_timeout=0) for r in b.records]
    assert seen + rest == rows(0, 50)


def test_an_unacknowledged_batch_is_delivered_again(redis_client, stream_key):
    RedisStreamWriter(stream_key, client=redis_client).write(rows(0, 20))
    crashed = RedisStreamReader(stream_key, group="g", client=redis_client)
    for batch in crashed.batches(max_records=5, idle_timeout=0):
        if batch.records[0]["i"] == 5:
            break  # crash while handling 5..9: never acknowledged
    assert crashed.pending() == 5
    again = RedisStreamReader(stream_key, group="g", client=redis_client)
    records = [r for b in again.batches(max_records=3, idle_timeout=0) for r in b.records]
    assert records == rows(5, 20)  # the pending entries first, then the new ones


def test_reader_blocks_until_a_writer_appends(redis_client, stream_key):
    reader = RedisStreamReader(stream_key, group="tail", client=redis_client)
    writer = RedisStreamWriter(stream_key, client=redis_client)
    got = []
    stop = threading.Event()
    seen = threading.Condition()

    def consume() -> None:
        for batch in reader.batches(max_records=10, max_wait=0.05, stop=stop):
            with seen:
                got.extend(batch.records)
                seen.notify_all()

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        for step in range(5):
            writer.write(rows(step * 4, step * 4 + 4))
            with seen:
                assert seen.wait_for(lambda n=(step + 1) * 4: len(got) >= n, timeout=10)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert got == rows(0, 20)


def test_unreachable_redis_is_unavailable():
    writer = RedisStreamWriter("k", url="redis://127.0.0.1:1/0")
    with pytest.raises(UnavailableError, match="Redis is unavailable"):
        writer.write(rows(0, 1))
    writer.close()
