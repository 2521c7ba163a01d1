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
    does not push the end of the wait further away)."""
    identifiers = _identifiers(key)

    def count(rate_limiter):
        over = [item for item in _limits(setting) if not rate_limiter.hit(item, *identifiers)]
        return max((_retry_after(rate_limiter, item, identifiers) for item in over),
                   default=None)
    return _run(count, default=None)


def wait(setting: str, *key: str) -> int | None:
    """The seconds until an attempt under `key` is within the limits again, or None when the
    next one is within them already; reads only (a GET may ask)."""
    identifiers = _identifiers(key)

    def look(rate_limiter):
        over = [item for item in _limits(setting) if not rate_limiter.test(item, *identifiers)]
        return max((_retry_after(rate_limiter, item, identifiers) for item in over),
                   default=None)
    return _run(look, default=None)


def clear(setting: str, *key: str) -> None:
    """Forget the attempts counted under `key`."""
    identifiers = _identifiers(key)

    def forget(rate_limiter):
        for item in _limits(setting):
            rate_limiter.clear(item, *identifiers)
    _run(forget, default=None)


def generation(*key: str) -> str:
    """A number that new_generation() counts up: put into keys, it forgets every count made
    under the old number at once, whatever else those keys hold (addresses, networks)."""
    name = "/".join(_identifiers(("generation", *key)))
    return str(_run(lambda rate_limiter: rate_limiter.storage.get(name), default=0))


def new_generation(*key: str) -> None:
    name = "/".join(_identifiers(("generation", *key)))
    _run(lambda rate_limiter: rate_limiter.storage.incr(name, GENERATION_LIFETIME), default=None)


# Redis going away and coming back, handled as Flask-Limiter handles it for its route limits
# (its fallback limiter, its log lines, which portal/setup.py turns into the portal's words):
# these counts are made in views, where Flask-Limiter does not look. Per process, like its own.
_recovery = {"at": 0.0, "delay": 1.0}
_RECOVERY_MAX_DELAY = 32.0


def _run(operation, *, default):
    if not limiter.enabled:
        return default
    _look_for_recovery()
    try:
        return operation(limiter.limiter)
    except Exception:  # noqa: BLE001 - whatever the storage raises, nobody is refused for it
        if limiter._storage_dead or not current_app.config.get(
                "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"):
            current_app.logger.warning("throttling storage unavailable; attempt not counted")
            return default
        limiter.logger.warning("Rate limit storage unreachable - falling back to in-memory "
                               "storage")
        limiter._storage_dead = True
        _recovery.update(at=time.monotonic() + 1.0, delay=1.0)
        try:
            return operation(limiter.limiter)  # the fallback, in this process's memory
        except Exception:  # noqa: BLE001
            return default


def _look_for_recovery() -> None:
    """While Redis is away, look again 1, 2, 4 … 32 s after the last look."""
    if not limiter._storage_dead or time.monotonic() < _recovery["at"]:
        return
    try:
        answers = limiter.storage.check()
    except Exception:  # noqa: BLE001
        answers = False
    if answers:
        limiter._storage_dead = False
        limiter.logger.info("Rate limit storage recovered")
    else:
        _recovery["delay"] = min(_recovery["delay"] * 2, _RECOVERY_MAX_DELAY)
        _recovery["at"] = time.monotonic() + _recovery["delay"]


def _retry_after(rate_limiter, item: RateLimitItem, identifiers: list[str]) -> int:
    reset_at, _remaining = rate_limiter.get_window_stats(item, *identifiers)
    return max(1, math.ceil(reset_at - time.time()))
