"""GET /companion/<version code>.apk: the Companion APK saved under Admin → Companion, so the
QR's download URL can point at the portal itself (PORTAL_PUBLIC_URL/companion/<code>.apk)."""
from flask import Blueprint, abort, send_file

from portal.settings import companion

bp = Blueprint("companion_apk", __name__)
APK_MIMETYPE = "application/vnd.android.package-archive"
# The URL names the version, and Save refuses a different APK under a version code already
# served there, so a download may be cached for long.
ONE_YEAR = 365 * 24 * 3600


@bp.get("/companion/<int:version_code>.apk")
def companion_apk(version_code: int):
    saved = companion.saved_apk()
    if saved is None or saved[0].facts.version_code != version_code:
        abort(404)
    apk, path = saved
    # conditional=True answers If-None-Match / If-Modified-Since with 304 and Range with 206.
    return send_file(path, mimetype=APK_MIMETYPE, conditional=True, etag=apk.sha256,
                     max_age=ONE_YEAR, download_name=f"{version_code}.apk")
