"""Outbox senders in the background: a scheduler job that can also be woken at once.

The webhook sender and the mailer are each a plain function that sends what is due
(``deliver_due``, ``send_due_mail``) and returns how many it tried. ``OutboxJob`` runs
one in every server process's scheduler, every ``interval`` seconds, and at once when a
commit in this process enqueued something (a blinker signal), never on the request path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from blinker import NamedSignal
from flask import Flask

from ..domain.timeutil import utcnow
from ..extensions import db

log = logging.getLogger(__name__)


class OutboxJob:
    """A pass of ``work`` on the scheduler, and its wake-up: a commit that enqueued work
    runs a pass at once; a pass already running makes one more instead of overlapping."""

    # A woken pass waits this long first, so that under load one claim and one record
    # serve the work of many commits (each is a write: on SQLite it queues with the
    # requests' writes) instead of a pass per commit.
    GATHER = 0.25

    def __init__(
        self,
        app: Flask,
        job_id: str,
        work: Callable[[], int],
        interval: float,
        enqueued: NamedSignal,
    ):
        self.app = app
        self.job_id = job_id
        self.work = work
        self.interval = interval
        self.enqueued = enqueued
        self.scheduler = None
        self._again = threading.Event()
        self._running = threading.Lock()

    def run(self) -> None:
        self._again.set()
        while self._again.is_set() and self._running.acquire(blocking=False):
            try:
                while self._again.is_set():
                    time.sleep(self.GATHER)
                    self._again.clear()
                    self._pass()
            finally:
                self._running.release()

    def _pass(self) -> None:
        with self.app.app_context():
            try:
                count = self.work()
            except Exception:
                log.exception("%s: a pass failed (the next one tries again)", self.job_id)
                count = 0
            finally:
                db.session.remove()
        if count:
            log.debug("%s: %d sent", self.job_id, count)

    def wake(self, _sender=None, **_kwargs) -> None:
        """From the committing thread: run a pass now."""
        self._again.set()
        if self._running.locked() or self.scheduler is None:
            return  # the running pass makes one more
        try:
            self.scheduler.modify_job(self.job_id, next_run_time=utcnow())
        except Exception:  # shutting down: the next start sends
            log.debug("could not wake %s", self.job_id, exc_info=True)

    def schedule(self, scheduler) -> None:
        self.scheduler = scheduler
        scheduler.add_job(
            self.run,
            "interval",
            seconds=self.interval,
            id=self.job_id,
            next_run_time=utcnow(),
            # Wake-ups may land while a pass runs: run() returns at once then.
            max_instances=3,
            coalesce=True,
            misfire_grace_time=None,
        )
        self.enqueued.connect(self.wake, sender=self.app, weak=False)
