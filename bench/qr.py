"""Benchmark: rendering a QR code image, cold and cached.

    .venv/bin/python -m bench.qr [--repeat 21]

Renders the contract's typical automatic Wi-Fi payload (the one tests/android/test_qr.py
checks: quick-start Companion, 12-character qr_id and OTP, WPA; about 850 bytes, version 23)
with portal.android.qr. Cold is the first render of a payload the process has not drawn
yet: each sample gets a fresh qr_id and OTP of the same length, so the symbol is built, masked
and drawn again, as for a new QR code. Cached is the same payload again (the functions'
lru_cache). The first render in the process (imports, PIL's PNG plugin) is not counted.
"""
import argparse
import secrets
import statistics
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_ALPHABET = string.ascii_letters + string.digits


def typical_payload(qr_id: str = "Ab3dEf6hIj9k", otp: str = "Q7x9K2m4Pz8w") -> str:
    """The payload text of the contract's typical automatic Wi-Fi QR code."""
    from portal.android.payload import (CompanionConfig, PayloadSettings, build_payload,
                                        encode_payload)
    return encode_payload(build_payload(PayloadSettings(
        companion=CompanionConfig(
            component_name="com.example.companion/.AdminReceiver",
            download_url="https://mdm.example.com/companion/companion-2.10.apk",
            signature_checksum="I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEXlg"),
        server_url="https://portal.example.com", option="auto", qr_id=qr_id, lang="de-CH",
        network="wifi", wifi_ssid="Corp-Guest-5G", wifi_security_type="WPA",
        wifi_password="Tr0ub4dor&3-horse-77", user="alice.smith@example.com", otp=otp)))


def _fresh() -> str:
    return typical_payload("".join(secrets.choice(_ALPHABET) for _ in range(12)),
                           "".join(secrets.choice(_ALPHABET) for _ in range(12)))


def _ms(render, text) -> float:
    started = time.perf_counter()
    render(text)
    return (time.perf_counter() - started) * 1000


def measure(repeat: int = 21) -> dict:
    """{"bytes", "version", "png_bytes", "svg_bytes",
    "png"/"svg": {"cold": median ms, "cached": median ms}}."""
    from portal.android.qr import qr_version, render_png, render_svg
    text = typical_payload()
    render_png(_fresh()), render_svg(_fresh())  # imports and first-call set-up, not counted
    figures = {"bytes": len(text.encode()), "version": qr_version(text),
               "png_bytes": len(render_png(text)), "svg_bytes": len(render_svg(text))}
    for name, render in (("png", render_png), ("svg", render_svg)):
        cold, cached = [], []
        for _ in range(repeat):
            text = _fresh()  # each format cold on its own: no symbol left by the other
            cold.append(_ms(render, text))
            cached.append(_ms(render, text))
        figures[name] = {"cold": statistics.median(cold), "cached": statistics.median(cached)}
    return figures


def report(figures: dict, repeat: int) -> None:
    print(f"\n[QR rendering] typical automatic Wi-Fi payload: {figures['bytes']} bytes, "
          f"version {figures['version']}; median of {repeat}")
    for name, size in (("png", figures["png_bytes"]), ("svg", figures["svg_bytes"])):
        f = figures[name]
        print(f"  render_{name}  cold {f['cold']:7.2f} ms   cached {f['cached'] * 1000:6.1f} µs"
              f"   ({size:,} bytes)")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args(argv)
    figures = measure(args.repeat)
    report(figures, args.repeat)
    return figures


if __name__ == "__main__":
    main()
