"""Engine set-up: SQLite writers queue across processes instead of busy-polling."""

import subprocess
import sys
import time

import pytest

from app.infra.database import _WriterQueue

from .support import ROOT, make_app

OTHER_PROCESS = """
import sys, time
sys.path.insert(0, sys.argv[1])
from app.infra.database import _WriterQueue
writers = _WriterQueue(sys.argv[2])
print("ready", flush=True)
started = time.monotonic()
writers.acquire()
print(time.monotonic() - started, flush=True)
writers.release()
"""


@pytest.mark.slow
def test_a_writer_of_another_process_waits_until_the_lock_is_released(tmp_path):
    database = str(tmp_path / "waitpoint.db")
    writers = _WriterQueue(database)
    writers.acquire()
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER_PROCESS, str(ROOT), database],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        assert other.poll() is None  # still queued behind this process
    finally:
        writers.release()
    waited = float(other.stdout.readline())
    assert other.wait(10) == 0
    other.stdout.close()
    assert 0.4 <= waited < 5
    assert (tmp_path / "waitpoint.db-writer.lock").exists()


HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from app.infra.database import _WriterQueue
writers = _WriterQueue(sys.argv[2])
writers.acquire()
print("holding", flush=True)
time.sleep(float(sys.argv[3]))
writers.release()
print("released", flush=True)
"""


@pytest.mark.slow
def test_a_writer_gives_up_at_the_timeout_and_the_lock_still_passes_on(tmp_path):
    from app.infra.database import WriterTimeout

    database = str(tmp_path / "waitpoint.db")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ROOT), database, "1.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        writers = _WriterQueue(database, timeout=0.3)
        started = time.monotonic()
        try:
            writers.acquire()
            raise AssertionError("acquired a lock another process holds")
        except WriterTimeout:
            pass
        assert 0.25 <= time.monotonic() - started < 1.2
        assert holder.stdout.readline().strip() == "released"
        time.sleep(0.2)  # the abandoned wait takes the lock and hands it back
        writers.acquire()  # neither this process's lock nor the file lock is stuck
        writers.release()
    finally:
        holder.wait(10)
        holder.stdout.close()


@pytest.mark.slow
def test_a_request_that_waits_too_long_to_write_gets_a_503_with_retry_after(tmp_path):
    # Its own SQLite database whatever engine the suite runs on: the queue is SQLite's.
    from app.cli import create_api_key, migrate_database

    database = tmp_path / "waitpoint.db"
    app = make_app(f"sqlite:///{database}", WAITPOINT_SQLITE_BUSY_TIMEOUT=0.3)
    with app.app_context():
        migrate_database()
        key = create_api_key("busy")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ROOT), str(database), "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        response = app.test_client().post(
            "/api/v1/waitpoints/tokens", json={}, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.get_json() == {"error": "database: busy, try again shortly"}
    finally:
        holder.wait(10)
        holder.stdout.close()
        app.extensions["waitpoint_waits"].close()


def test_threads_of_one_process_take_turns(tmp_path):
    import threading

    writers = _WriterQueue(str(tmp_path / "waitpoint.db"))
    inside, most = [0], [0]

    def write():
        for _ in range(50):
            writers.acquire()
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            time.sleep(0.0005)
            inside[0] -= 1
            writers.release()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1


def test_an_in_memory_database_needs_no_lock_file():
    writers = _WriterQueue(":memory:")
    writers.acquire()
    writers.release()
    assert writers._path is None
