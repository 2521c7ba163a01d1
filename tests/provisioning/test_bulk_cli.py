"""flask bulk-provision FILE --profile NAME: the same checks as the page, a progress bar."""
import sqlalchemy as sa

from portal.enrollment.models import Batch, QrCode
from portal.licensing.seats import figures, set_total
from portal.provisioning.models import StagedBatch

import pytest


@pytest.fixture
def run(app, db):
    runner = app.test_cli_runner()  # Click 8.2+: stdout and stderr apart

    def invoke(*args):
        return runner.invoke(args=list(args))
    return invoke


def count(db, model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_a_clean_file_makes_the_batch_and_prints_its_id(run, db, profile, make_user, tmp_path):
    set_total(10)
    make_user("pupil1"), make_user("pupil2")
    csv = tmp_path / "class.csv"
    csv.write_bytes(b"username;usage_count\npupil1;2\npupil2;1\n")
    result = run("bulk-provision", str(csv), "--profile", "school wi-fi",
                 "--otp-validity", "72")
    assert result.exit_code == 0, result.output
    batch = db.session.scalar(sa.select(Batch))
    assert f"Created batch {batch.public_id}: 2 QR codes, 3 licenses reserved." in result.stdout
    assert "Preparing QR codes" in result.stderr
    assert count(db, QrCode, QrCode.batch_id == batch.id) == 2 and figures().reserved == 3


def test_bad_rows_are_reported_and_nothing_saved(run, db, profile, make_user, tmp_path):
    set_total(10)
    make_user("pupil1")
    csv = tmp_path / "class.csv"
    csv.write_bytes(b"username,usage_count,localization\npupil1,0,\nghost,1,\n=cmd,1,\n"
                    b"pupil1,1,zz-zz\n")
    result = run("bulk-provision", str(csv), "--profile", "School Wi-Fi")
    assert result.exit_code == 1
    assert "Row 2, usage_count: Usage Count must be a whole number, 1 or more." in result.stderr
    assert "Row 3, username: Unknown user 'ghost'" in result.stderr
    assert "Row 4, username: A cell may not start with" in result.stderr
    assert "Row 5, username: Duplicate row" in result.stderr
    assert "nothing was saved" in result.stderr
    assert (count(db, Batch), count(db, QrCode), count(db, StagedBatch)) == (0, 0, 0)


@pytest.mark.parametrize("args,fragment", [
    (("--profile", "Nope"), "no network profile has this name"),
    (("--profile", "School Wi-Fi", "--otp-validity", "soon"), "give a number of hours"),
    (("--profile", "School Wi-Fi", "--created-by", "nobody"), "no admin has this name"),
])
def test_bad_options_are_refused(run, db, profile, tmp_path, args, fragment):
    csv = tmp_path / "class.csv"
    csv.write_bytes(b"username\npupil1\n")
    result = run("bulk-provision", str(csv), *args)
    assert result.exit_code == 1 and fragment in result.stderr + result.output


def test_a_missing_file_is_named(run, db, profile, tmp_path):
    result = run("bulk-provision", str(tmp_path / "none.csv"), "--profile", "School Wi-Fi")
    assert result.exit_code == 1 and "no such file" in result.stderr + result.output
