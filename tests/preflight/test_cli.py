"""`flask --app wsgi preflight`: one line per check, exit 1 on a failure, 0 on warnings only."""
import pytest
import sqlalchemy as sa

from portal.preflight import PreflightRun
from portal.settings.companion import save_companion, seed_example_companion
from tests.preflight.conftest import FileServer, portal_over_https, routable_address
from tests.support.apks import apks, build_apk  # noqa: F401  (apks: the session fixture)
from tests.support.certs import make_certs


@pytest.fixture
def preflight_cli(app, db):
    runner = app.test_cli_runner()
    return lambda: runner.invoke(args=["preflight"])


def test_quick_start_values_exit_1_with_one_line_per_check(db, preflight_cli):
    seed_example_companion()
    result = preflight_cli()
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert len(lines) == 11  # ten checks and the count
    assert any(line.startswith("FAILURE  Quick-start values: ") and "Fix: Enter your "
               "Companion's values under Admin → Companion." in line for line in lines)
    assert lines[-1].endswith("warnings.") and not lines[-1].startswith("0 failures")
    run = db.session.scalar(sa.select(PreflightRun))
    assert (run.actor_type, run.actor) == ("operator", "flask preflight")


def test_warnings_only_exit_0(app, db, preflight_cli, apks, tmp_path):
    """The portal and the APK on this machine's own (non-loopback) address, over https."""
    address = routable_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    ca, crt, key = make_certs(tmp_path / "tls", hosts=(address,))
    apk = build_apk(tmp_path, "acme", key=apks.key_a, package="com.acme.companion")
    app.config["TRUSTED_CA_FILE"] = ca
    with portal_over_https(app, (crt, key), host=address) as url, \
            FileServer(address, tls=(crt, key)) as files:
        files.routes["/companion.apk"] = (200, apk.read_bytes())
        app.config["PORTAL_PUBLIC_URL"] = url
        save_companion("com.acme.companion/.AdminReceiver", files.url + "/companion.apk",
                       apks.key_a.checksum, True, "companion", actor="setup")
        result = preflight_cli()
    assert result.exit_code == 0, result.output
    assert "FAILURE" not in result.output
    assert "PASS     Companion APK: com.acme.companion 4.2.0 (42)" in result.output
    assert "PASS     Public URL answers" in result.output
