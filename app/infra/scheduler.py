"""The background sweep: an APScheduler job that times out due tokens.

Every server process runs its own scheduler (``waitpoint serve`` starts one per
gunicorn worker); ``expire_due`` is safe to run in several at once, so there is
no leader to elect and no single point of failure. The first sweep runs at start,
so tokens that fell due while the server was down are timed out at once.

The webhook sender (``infra.webhooks``, unless ``WAITPOINT_WEBHOOKS=off``) and the
mailer (``infra.mailer``) run beside it in the same scheduler (``infra.background``).
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from ..domain.approvers import mail_enqueued
from ..domain.lifecycle import expire_due
from ..domain.outbox import deliveries_enqueued
from ..domain.timeutil import utcnow
from ..extensions import db
from . import metrics
from .background import OutboxJob
from .mailer import send_due_mail
from .webhooks import deliver_due

log = logging.getLogger(__name__)


def sweep_once(app: Flask) -> int:
    """One sweep inside an app context (scheduler threads have none of their own)."""
    with app.app_context(), metrics.sweep_timer():
        try:
            count = expire_due(batch_size=app.config["WAITPOINT_SWEEP_BATCH"])
        finally:
            db.session.remove()
    if count:
        log.info("timed out %d token(s)", count)
    return count


def start_scheduler(app: Flask) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC", daemon=True)
    scheduler.add_job(
        sweep_once,
        "interval",
        args=[app],
        seconds=app.config["WAITPOINT_SWEEP_INTERVAL"],
        id="expire_due",
        next_run_time=utcnow(),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    if app.config["WAITPOINT_WEBHOOKS"]:
        interval = app.config["WAITPOINT_WEBHOOK_INTERVAL"]
        OutboxJob(app, "deliver_webhooks", deliver_due, interval, deliveries_enqueued).schedule(
            scheduler
        )
    interval = app.config["WAITPOINT_MAIL_INTERVAL"]
    OutboxJob(app, "send_mail", send_due_mail, interval, mail_enqueued).schedule(scheduler)
    scheduler.start()
    return scheduler
