import threading

import pytest

from lgdk.video.background import BackgroundWriter, prefetch


def test_prefetch_yields_every_item_in_order_from_another_thread():
    threads = []

    def items():
        for i in range(20):
            threads.append(threading.current_thread())
            yield i

    assert list(prefetch(items(), depth=2)) == list(range(20))
    assert all(t is not threading.main_thread() for t in threads)


def test_an_error_of_the_source_reaches_the_consumer_after_the_good_items():
    def items():
        yield 1
        yield 2
        raise ValueError("frame 3 is not a readable image")

    got = []
    with pytest.raises(ValueError, match="frame 3"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_writer_runs_writes_in_order_and_finish_waits_for_them():
    done = []
    writer = BackgroundWriter(pending=2)
    for i in range(10):
        writer.submit(done.append, i)
    writer.finish()
    assert done == list(range(10))


def test_writer_finish_raises_the_first_failed_write():
    def write(i):
        if i == 3:
            raise OSError("disk full")

    writer = BackgroundWriter()
    with pytest.raises(OSError, match="disk full"):
        for i in range(6):
            writer.submit(write, i)
        writer.finish()
    writer.abort()
