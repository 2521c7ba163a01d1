"""Provisioning options beyond the network itself, checked as Android checks them
(android-qr.md §2, §4, §6): the time zone and the Wi-Fi proxy. Each rule lives here once, so
the wizard, network profiles, bulk rows and the Admin API all refuse the same values."""
import re
import unicodedata
import zoneinfo
from functools import lru_cache
from urllib.parse import urlsplit

# The Android release each option needs, shown beside its field (API levels: android-qr.md §2).
# QR provisioning itself needs Android 7.0, so options older than that need nothing more.
ANDROID_VERSION = {
    "time_zone": "Android 7.0+",
    "proxy": "Android 7.0+",
    "eap": "Android 10+",
    "mobile": "Android 13+",
}
MAX_PORT = 65535
MAX_HOST_LENGTH = 253
MAX_BYPASS_LENGTH = 1024
MAX_PAC_URL_LENGTH = 1024

# android.net.Proxy's own patterns (Proxy.validate, used by ProxyInfo.isValid, which the Wi-Fi
# stack checks before it saves a network with a static proxy).
_NAME = r"[a-zA-Z0-9]+(\-[a-zA-Z0-9]+)*(\.[a-zA-Z0-9]+(\-[a-zA-Z0-9]+)*)*"
_EXCLUSION = r"[a-zA-Z0-9*]+(\-[a-zA-Z0-9*]+)*(\.[a-zA-Z0-9*]+(\-[a-zA-Z0-9*]+)*)*"
_HOST = re.compile(_NAME)
_EXCLUSION_LIST = re.compile(rf"{_EXCLUSION}(,{_EXCLUSION})*")


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """The IANA (Olson) names Android's AlarmManager.setTimeZone accepts."""
    return frozenset(zoneinfo.available_timezones())


def time_zone_error(name: str | None) -> str | None:
    """Empty is fine (the device keeps its own); otherwise an IANA name such as Europe/Zurich."""
    if not name:
        return None
    if name in time_zones():
        return None
    near = [zone for zone in time_zones() if zone.lower() == name.lower()]
    if near:
        return f'Time zone is written "{near[0]}" (capitals matter), not "{name}".'
    return (f'"{name}" is not an IANA time zone name; use one such as Europe/Zurich, '
            "America/New_York or UTC.")


def proxy_errors(host: str | None, port: int | None, bypass: str | None,
                 pac_url: str | None) -> dict[str, str]:
    """{field: message} for a static proxy (host, port, bypass) or a PAC URL; fields are
    "proxy_host", "proxy_port", "proxy_bypass" and "pac_url". Both empty: no proxy."""
    if host and pac_url:
        # Android takes the host and silently drops the PAC URL; say so instead.
        return {"pac_url": "Enter either a proxy host and port or a PAC URL, not both."}
    if pac_url:
        return {"pac_url": message} if (message := _pac_url_error(pac_url)) else {}
    if not host:
        errors = {}
        if port is not None:
            errors["proxy_port"] = "Enter the proxy host too, or leave the port empty."
        if bypass:
            errors["proxy_bypass"] = "Enter the proxy host too, or leave the bypass list empty."
        return errors
    checks = {"proxy_host": _host_error(host), "proxy_port": _port_error(port),
              "proxy_bypass": _bypass_error(bypass or "")}
    return {field: message for field, message in checks.items() if message}


def _host_error(host: str) -> str | None:
    if len(host) > MAX_HOST_LENGTH or not _HOST.fullmatch(host):
        return ("Proxy host must be a host name or IPv4 address such as proxy.example.com or "
                "10.0.0.8: letters, digits, hyphens and dots, no scheme, port or spaces.")
    return None


def _port_error(port) -> str | None:
    if port is None:
        return "Enter the proxy port (1 to 65535)."
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= MAX_PORT:
        return f"Proxy port must be 1 to {MAX_PORT:,}, not {port}."
    return None


def _bypass_error(bypass: str) -> str | None:
    if not bypass:
        return None
    if len(bypass) > MAX_BYPASS_LENGTH or not _EXCLUSION_LIST.fullmatch(bypass):
        return ("Bypass list must be host names separated by commas, without spaces, such "
                "as localhost,*.example.com,10.0.0.1 (* stands for any part).")
    return None


def _pac_url_error(url: str) -> str | None:
    """One http(s) address of the proxy script, read as the download URL is (payload.py)."""
    if len(url) > MAX_PAC_URL_LENGTH:
        return f"PAC URL must have at most {MAX_PAC_URL_LENGTH} characters."
    problem = url_problem(url, ("http", "https"))
    return f"PAC URL must be an http:// or https:// address of the proxy script{problem}." \
        if problem else None


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """A parenthesised reason the URL is unusable, or None (the download URL, the server URL
    and the PAC URL are read alike)."""
    if not url:
        return " (it is empty)"
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in url):
        return " (it contains spaces or other invisible characters)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a malformed port
    except ValueError:
        return " (it is not a valid address)"
    if parts.scheme.lower() not in schemes:
        return f' (it starts with "{parts.scheme or url}")'
    if not parts.hostname:
        return " (the host name is missing)"
    return None
