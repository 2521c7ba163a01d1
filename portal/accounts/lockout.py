"""Throttling failed sign-ins by user name, without locking the person out from everywhere.

A password can be guessed, so wrong passwords for one name are limited (ADMIN_LOGIN_LIMIT,
SSP_SIGN_IN_LIMIT: 5 per 5 minutes) — but per name *and network* (the address's /24 or /64):
ten wrong passwords for a name from one network refuse that name from that network only, and
the right password still gets through from anywhere else. An attacker spread over many
networks gets that many guesses per network for a name, and each address stays under the
per-address limits of the routes as well (ADMIN_LOGIN_IP_LIMIT, SSP_SIGN_IN_IP_LIMIT).

Across all networks the failures for a name are counted too, but never refuse anyone: they are
what the console shows as "Locked out" (someone has failed too often for this name, somewhere),
and Unlock forgets both counts — the per-network ones by counting up a generation in their
keys, since the networks are not known. Reading them writes nothing, so a list may show
"Locked out" on a GET. The sign-in routes: portal/admin/auth.py, portal/selfservice/sign_in.py.
"""
from dataclasses import dataclass

from portal.audit.log import record
from portal.database import db
from portal.throttle import clear, fail, generation, network_of, new_generation, wait


@dataclass(frozen=True)
class Throttle:
    prefix: str    # the keys: prefix + the user name as typed, lower case
    setting: str   # the config key of the limit


ADMIN = Throttle("admin-login:", "ADMIN_LOGIN_LIMIT")
USER = Throttle("ssp-sign-in:", "SSP_SIGN_IN_LIMIT")


def _name(throttle: Throttle, username: str | None) -> str:
    return throttle.prefix + (username or "").strip().lower()[:64]


def _here(throttle: Throttle, username: str | None, address: str) -> tuple[str, ...]:
    name = _name(throttle, username)
    return name, "network", network_of(address), generation(name)


def refusal(throttle: Throttle, username: str | None, address: str) -> int | None:
    """The seconds to wait when this name has failed too often from this address's network;
    None when a sign-in may be tried. Reads only."""
    return wait(throttle.setting, *_here(throttle, username, address))


def failed(throttle: Throttle, username: str | None, address: str) -> None:
    """Count a wrong password (or a disabled account's) for this name, from this address."""
    fail(throttle.setting, *_here(throttle, username, address))
    fail(throttle.setting, _name(throttle, username), "anywhere")


def is_locked_out(throttle: Throttle, username: str) -> bool:
    """Whether this name has failed too often lately, from some network; reads only."""
    return wait(throttle.setting, _name(throttle, username), "anywhere") is not None


def unlock(throttle: Throttle, username: str, *, kind: str, actor: str) -> None:
    """Forget the failed sign-ins counted against this user name, on every network; audited,
    commits."""
    name = _name(throttle, username)
    clear(throttle.setting, name, "anywhere")
    new_generation(name)
    record(f"{kind}.unlock", actor_type="admin", actor=actor, target=username)
    db.session.commit()
