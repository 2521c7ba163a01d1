"""One change at a time to the enterprise's sign-in details, across every process of the portal.

Google keeps an enterprise's Self Service sign-in details as one list, and the API changes it
only whole (enterprises.get, then enterprises.patch with updateMask signinDetails). Two
processes changing it at once (two admins saving Self Service QR codes, or a revocation beside
a save) would each send back the list as it read it: one QR code's sign-in details would be
lost, or a revoked QR code's would come back and go on enrolling devices. So each change holds
a lease on the amapi_settings row first: a conditional UPDATE, committed at once (the caller is
outside any transaction: it is about to ask Google), that another process can take only once it
was given back or has run out. The holder renews it right before it writes to Google,
and gives up (the worker tries again) if it ran out meanwhile.
"""
import secrets
import time
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from portal.amapi.client import AmapiError, longest_call_seconds
from portal.amapi.models import AmapiSettings
from portal.database import db, end_transaction, no_transaction_open, utcnow

BUSY = ("Another change to the Self Service sign-in details at Google is under way; try again "
        "in a moment.")
LOST = ("The change to the Self Service sign-in details at Google took too long and was not "
        "sent; the portal will try again.")
S = AmapiSettings.__table__


class Lease:
    def __init__(self, holder: str):
        self.holder = holder

    def renew(self) -> None:
        """Before writing to Google: still ours? Then it lasts another call. Raises
        AmapiError("signin", LOST, transient) when another process has taken it."""
        if not _update(S.c.signin_lock_holder == self.holder, self.holder):
            raise AmapiError("signin", LOST, transient=True)

    def give_back(self) -> None:
        db.session.execute(sa.update(S).where(S.c.id == 1, S.c.signin_lock_holder == self.holder)
                           .values(signin_lock_holder=None, signin_lock_until=None))
        end_transaction()


@contextmanager
def signin_details():
    """Hold the sign-in details' lease for the block, waiting up to AMAPI_SIGNIN_WAIT seconds
    for another holder. Raises AmapiError("signin", BUSY, transient) when it stays taken."""
    no_transaction_open("The sign-in details' lease")
    holder = secrets.token_hex(16)
    deadline = time.monotonic() + float(current_app.config.get("AMAPI_SIGNIN_WAIT", 30))
    pause = 0.02
    while not _update(sa.or_(S.c.signin_lock_until.is_(None),
                             S.c.signin_lock_until < utcnow()), holder):
        if time.monotonic() + pause > deadline:
            raise AmapiError("signin", BUSY, transient=True)
        time.sleep(pause)
        pause = min(pause * 2, 0.25)
    lease = Lease(holder)
    try:
        yield lease
    finally:
        lease.give_back()


def _update(condition, holder: str) -> bool:
    """Take (or renew) the lease where `condition` holds; committed at once, and without
    expiring what the caller has loaded (it is outside a transaction, about to ask Google)."""
    until = utcnow() + timedelta(seconds=longest_call_seconds())
    changed = db.session.execute(sa.update(S).where(S.c.id == 1, condition).values(
        signin_lock_holder=holder, signin_lock_until=until)).rowcount
    end_transaction()
    return changed == 1
