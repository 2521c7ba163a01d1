"""Failed attempts counted in Flask-Limiter's storage (memory, or Redis shared by every worker),
for limits that are checked after the attempt rather than before it.

Flask-Limiter's route decorators refuse a request before it is looked at. That is right for a
guessable secret (a password), wrong for a credential nobody can guess (a QR code's 96-bit OTP,
a 256-bit ticket): there a request over the limit is still checked, a right one goes through,
and only a wrong one is told to wait (portal/api/enrollments.py). The keys live beside the
route limits' keys, under the same prefix.
"""
import ipaddress
import math
import time

from flask import current_app
from limits import RateLimitItem, parse_many

from portal.extensions import limiter


# Longer than any limit's window: an older count has left its window before its generation's
# number is forgotten (and starts again at 0).
GENERATION_LIFETIME = 7 * 24 * 3600


def network_of(address: str) -> str:
    """The network an address belongs to as far as throttling goes: its /24 (IPv4) or /64
    (IPv6), the block one site, one NAT or one attacker's line usually holds."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # "unknown" and the like: its own network
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _identifiers(key: tuple[str, ...]) -> list[str]:
    prefix = getattr(limiter, "_key_prefix", "")
    return [prefix, *key] if prefix else list(key)


def _limits(setting: str) -> list[RateLimitItem]:
    return parse_many(current_app.config[setting])


def fail(setting: str, *key: str) -> int | None:
    """Count one failed attempt under `key` against the limits of config[setting].

    Returns None while the attempts are within every limit, else the seconds until the next
    attempt would be within them again (an attempt over the limit is not counted: a flood
    does not push the end of the wait further away). Storage down: None (swallowed, as
    Flask-Limiter does with RATELIMIT_SWALLOW_ERRORS)."""
    if not limiter.enabled:
        return None
    identifiers = _identifiers(key)
    try:
        over = [item for item in _limits(setting) if not limiter.limiter.hit(item, *identifiers)]
        return max((_retry_after(item, identifiers) for item in over), default=None)
    except Exception:  # noqa: BLE001 - a storage error must not refuse anyone
        current_app.logger.warning("throttling storage unavailable; attempt not counted")
        return None


def wait(setting: str, *key: str) -> int | None:
    """The seconds until an attempt under `key` is within the limits again, or None when the
    next one is within them already; reads only (a GET may ask)."""
    if not limiter.enabled:
        return None
    identifiers = _identifiers(key)
    try:
        over = [item for item in _limits(setting) if not limiter.limiter.test(item, *identifiers)]
        return max((_retry_after(item, identifiers) for item in over), default=None)
    except Exception:  # noqa: BLE001 - storage down: let people through
        return None


def generation(*key: str) -> str:
    """A number that new_generation() counts up: put into keys, it forgets every count made
    under the old number at once, whatever else those keys hold (addresses, networks)."""
    try:
        return str(limiter.limiter.storage.get("/".join(_identifiers(("generation", *key)))))
    except Exception:  # noqa: BLE001 - storage down: counts start afresh in the fallback
        return "0"


def new_generation(*key: str) -> None:
    limiter.limiter.storage.incr("/".join(_identifiers(("generation", *key))),
                                 expiry=GENERATION_LIFETIME)


def clear(setting: str, *key: str) -> None:
    """Forget the attempts counted under `key`."""
    identifiers = _identifiers(key)
    for item in _limits(setting):
        limiter.limiter.clear(item, *identifiers)


def _retry_after(item: RateLimitItem, identifiers: list[str]) -> int:
    reset_at, _remaining = limiter.limiter.get_window_stats(item, *identifiers)
    return max(1, math.ceil(reset_at - time.time()))
