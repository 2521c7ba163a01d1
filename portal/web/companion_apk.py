"""GET /companion/<version code>.apk: a Companion APK saved under Admin → Companion with the
portal's own address as its download URL (PORTAL_PUBLIC_URL/companion/<code>.apk)."""
from flask import Blueprint, abort, send_file

from portal.settings import companion

bp = Blueprint("companion_apk", __name__)
APK_MIMETYPE = "application/vnd.android.package-archive"
# The URL names the version, and Save refuses a different APK under a version code already
# served there, so a download may be cached for long.
ONE_YEAR = 365 * 24 * 3600
MAX_VERSION_CODE = 2**31 - 1  # android:versionCode is a Java int


@bp.get(f"/companion/<int(min=1, max={MAX_VERSION_CODE}):version_code>.apk")
def companion_apk(version_code: int):
    served = companion.served_apk(version_code)
    if served is None:
        abort(404)
    apk, path = served
    # conditional=True answers If-None-Match / If-Modified-Since with 304 and Range with 206.
    return send_file(path, mimetype=APK_MIMETYPE, conditional=True, etag=apk.sha256,
                     max_age=ONE_YEAR, download_name=f"{version_code}.apk")
