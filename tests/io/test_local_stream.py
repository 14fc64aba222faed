import json
import subprocess
import sys
import threading
import time

import pytest

from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.io.local_stream import (
    LocalStreamReader,
    LocalStreamWriter,
    consumer_name,
    list_parts,
)


def rows(start: int, stop: int) -> list[dict]:
    return [{"i": i, "user": f"u{i % 7}"} for i in range(start, stop)]


def test_layout_is_that_of_a_flink_file_sink(tmp_path):
    with LocalStreamWriter(tmp_path, roll_records=4) as writer:
        writer.write(rows(0, 10))
        names = sorted(p.name for p in tmp_path.iterdir())
        # Two closed parts and the newest one in progress, hidden.
        assert len([n for n in names if n.startswith("part-")]) == 2
        assert len([n for n in names if n.startswith(".part-") and ".inprogress." in n]) == 1
    parts = list_parts(tmp_path)
    assert [p.counter for p in parts] == [0, 1, 2]
    assert all(p.closed and p.base.endswith(".jsonl") for p in parts)
    lines = [json.loads(line) for p in parts for line in p.path.read_text().splitlines()]
    assert lines == rows(0, 10)


def test_writer_offsets_continue_after_a_restart(tmp_path):
    with LocalStreamWriter(tmp_path, dataset="clicks", roll_records=3) as writer:
        first = writer.write(rows(0, 5))
    assert (first.start_offset, first.end_offset) == (1, 5)
    with LocalStreamWriter(tmp_path, dataset="clicks", roll_records=3) as writer:
        second = writer.write(rows(5, 8))
        assert writer.written_range().start_offset == 6
    assert (second.start_offset, second.end_offset) == (6, 8)
    # 3 + 2 records, then a new writer (new uuid) continues with part 2.
    parts = list_parts(tmp_path)
    assert [p.counter for p in parts] == [0, 1, 2]
    assert parts[1].uid != parts[2].uid
    records = list(LocalStreamReader(tmp_path).records(idle_timeout=0))
    assert records == rows(0, 8)


def test_one_writer_at_a_time(tmp_path):
    with (
        LocalStreamWriter(tmp_path),
        pytest.raises(FailedPreconditionError, match="another writer"),
    ):
        LocalStreamWriter(tmp_path)


def test_read_in_order_stop_and_resume_nothing_lost_or_repeated(tmp_path):
    with LocalStreamWriter(tmp_path, roll_records=10) as writer:
        writer.write(rows(0, 95))
    stop = threading.Event()
    seen: list[dict] = []
    reader = LocalStreamReader(tmp_path, consumer="train-clicks", dataset="clicks")
    for batch in reader.batches(max_records=7, stop=stop, idle_timeout=0):
        seen.extend(batch.records)
        assert batch.end_offset - batch.start_offset + 1 == len(batch)
        if len(seen) >= 40:
            stop.set()  # a graceful stop: the loop ends and the batch is committed
    assert len(seen) == 42
    assert reader.committed.offset == 42
    assert reader.read_range().start_offset == 1
    assert reader.read_range().end_offset == 42

    resumed = LocalStreamReader(tmp_path, consumer="train-clicks", dataset="clicks")
    rest = list(resumed.batches(max_records=7, idle_timeout=0))
    assert rest[0].start_offset == 43
    assert seen + [r for b in rest for r in b.records] == rows(0, 95)
    assert resumed.read_range().end_offset == 95
    # Another consumer has its own position.
    assert len(LocalStreamReader(tmp_path, consumer="other").read_table()) == 95


def test_an_abandoned_batch_is_delivered_again(tmp_path):
    with LocalStreamWriter(tmp_path) as writer:
        writer.write(rows(0, 20))
    reader = LocalStreamReader(tmp_path, consumer="c1")
    for batch in reader.batches(max_records=5, idle_timeout=0):
        if batch.start_offset == 6:
            break  # a crash while handling 6..10: never committed
    again = LocalStreamReader(tmp_path, consumer="c1")
    first = next(iter(again.batches(max_records=5, idle_timeout=0)))
    assert first.start_offset == 6
    assert first.records == rows(5, 10)


def test_tail_a_stream_written_by_another_thread(tmp_path):
    writer = LocalStreamWriter(tmp_path, roll_records=25)
    reader = LocalStreamReader(tmp_path, consumer="tail")
    seen_count = threading.Condition()
    seen: list[dict] = []
    stop = threading.Event()

    def read() -> None:
        for batch in reader.batches(max_records=8, max_wait=0.02, stop=stop):
            with seen_count:
                seen.extend(batch.records)
                seen_count.notify_all()

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for step in range(10):
            writer.write(rows(step * 10, step * 10 + 10))
            # The reader sees each write, also from the part still in progress.
            with seen_count:
                assert seen_count.wait_for(lambda n=(step + 1) * 10: len(seen) >= n, timeout=10)
    finally:
        writer.close()
        stop.set()
        thread.join(timeout=10)
    assert seen == rows(0, 100)
    assert reader.committed.offset == 100


WRITER = """
import sys
from tideflow.io.local_stream import LocalStreamWriter
with LocalStreamWriter(sys.argv[1], roll_records=50) as writer:
    for i in range(0, 2000, 20):
        writer.write([{"i": j} for j in range(i, i + 20)])
"""


def test_tail_a_stream_written_by_another_process(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)])
    stop = threading.Event()
    seen: list[int] = []
    deadline = time.monotonic() + 60
    try:
        for batch in LocalStreamReader(tmp_path, consumer="proc").batches(
            max_records=64, max_wait=0.05, stop=stop
        ):
            seen.extend(r["i"] for r in batch.records)
            if len(seen) >= 2000 or time.monotonic() > deadline:
                stop.set()
    finally:
        assert process.wait(timeout=60) == 0
    assert seen == list(range(2000))


CRASHING_WRITER = """
import os, sys
from tideflow.io.local_stream import LocalStreamWriter
writer = LocalStreamWriter(sys.argv[1])
writer.write([{"i": i, "user": f"u{i % 7}"} for i in range(3)])
writer._file.write(b'{"i": 3, "us')  # torn mid-line by the crash below
writer._file.flush()
os._exit(9)
"""


def test_a_crashed_writers_part_is_closed_without_its_torn_line(tmp_path):
    crashed = subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(tmp_path)], check=False)
    assert crashed.returncode == 9
    assert [p.closed for p in list_parts(tmp_path)] == [False]
    reader = LocalStreamReader(tmp_path)
    assert list(reader.records(idle_timeout=0)) == rows(0, 3)  # the torn line is not read
    with LocalStreamWriter(tmp_path) as again:
        assert again.offset == 3
        again.write(rows(3, 5))
    assert all(p.closed for p in list_parts(tmp_path))
    assert list(LocalStreamReader(tmp_path).records(idle_timeout=0)) == rows(0, 5)


def test_closed_parts_only_and_bad_lines(tmp_path):
    with LocalStreamWriter(tmp_path, roll_records=4) as writer:
        writer.write(rows(0, 6))
        closed_only = LocalStreamReader(tmp_path, read_in_progress=False)
        assert list(closed_only.records(idle_timeout=0)) == rows(0, 4)
    (tmp_path / "part-00000000-0000-0000-0000-000000000000-9.jsonl").write_text("not json\n")
    with pytest.raises(InvalidArgumentError, match="not JSON"):
        list(LocalStreamReader(tmp_path).records(idle_timeout=0))


def test_consumer_names():
    assert consumer_name("clicks", "train", workflow="ctr") == "ctr-train-clicks"
    with pytest.raises(InvalidArgumentError, match=r"consumer name 'a\.b' is not valid"):
        LocalStreamReader("/nonexistent", consumer="a.b")
