"""Operator commands (PRODUCT.md §6): a success writes its rows and one audit event; bad input
prints one `Error:` line, exits non-zero and writes nothing."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from config import database_url
from portal.accounts.admins import authenticate
from portal.accounts.models import AdminUser, PortalUser
from portal.audit.models import AuditEvent
from portal.licensing.models import LicensePool
from portal.licensing.seats import Figures, figures
from portal.settings.companion import EXAMPLE_COMPONENT
from portal.settings.models import CompanionSettings
from tests.conftest import _fresh_postgres_database, drop_postgres_database
from tests.support.addresses import LISTS_AND_LINES, NAMED

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-passphrase"
LONG_NAME = "a" * 65


@pytest.fixture
def run(app, db):
    runner = app.test_cli_runner()

    def invoke(*args, input=None):
        return runner.invoke(args=list(args), input=input)
    return invoke


def _count(db, model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _snapshot(db):
    return ([_count(db, model) for model in (AdminUser, PortalUser, AuditEvent, CompanionSettings)],
            figures())


def _audit_events(db) -> list[AuditEvent]:
    return db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()


def _assert_refused(run, db, args, fragment, input=None):
    before = _snapshot(db)
    result = run(*args, input=input)
    assert result.exit_code != 0, result.output
    # A SystemExit is click's clean exit; any other exception would be a traceback for the operator.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert fragment in errors[0]
    assert _snapshot(db) == before


def _assert_one_audit_event(db, action) -> AuditEvent:
    events = _audit_events(db)
    assert [(event.action, event.actor_type) for event in events] == [(action, "operator")]
    return events[0]


# create-admin ---------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, recipient, role, message", [
    ([], False, "administrator", "Created admin 'alice'."),
    (["--mail-recipient"], True, "administrator", "Created admin 'alice' (mail recipient)."),
    (["--role", "helpdesk"], False, "helpdesk", "Created admin 'alice', role Helpdesk."),
])
def test_create_admin_stores_an_argon2_hash_the_recipient_flag_and_one_clean_audit_event(
        run, db, flag, recipient, role, message):
    result = run("create-admin", "alice", "--email", "Alice@Example.com",
                 "--password", PASSWORD, *flag)

    assert result.exit_code == 0, result.output
    assert result.output.strip() == message
    admin = db.session.scalar(sa.select(AdminUser).where(AdminUser.username == "alice"))
    assert admin.email == "Alice@example.com"
    assert admin.mail_recipient is recipient
    assert admin.role == role
    assert admin.password_hash.startswith("$argon2id$")
    assert admin.check_password(PASSWORD)
    event = _assert_one_audit_event(db, "admin.create")
    assert event.details == {"mail_recipient": recipient, "role": role}


def test_create_admin_prompts_for_the_password_when_it_is_left_out(run, db):
    result = run("create-admin", "alice", "--email", "alice@example.com",
                 input=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    admin = db.session.scalar(sa.select(AdminUser).where(AdminUser.username == "alice"))
    assert admin.check_password(PASSWORD)


def _admin_args(username="bob", email="bob@example.com", password=PASSWORD):
    args = ["create-admin", username, "--email", email]
    return args + ["--password", password] if password is not None else args


BAD_ADMIN_INPUT = {
    "duplicate": (_admin_args(username="alice"), "already exists", None),
    "duplicate_differing_in_case": (_admin_args(username="ALICE"), "already exists", None),
    "email_without_at": (_admin_args(email="bob.example.com"), "not a valid email", None),
    "email_with_space": (_admin_args(email="bob smith@example.com"), "not a valid email", None),
    "email_empty": (_admin_args(email=""), "email address is required", None),
    "email_blank": (_admin_args(email="   "), "email address is required", None),
    "email_option_missing": (["create-admin", "bob", "--password", PASSWORD], "--email", None),
    "password_prompted_empty": (_admin_args(password=None), "password is required", "\n\n"),
    "password_empty": (_admin_args(password=""), "password is required", None),
    "password_too_short": (_admin_args(password="short"), "at least 8 characters", None),
    "username_with_space": (_admin_args(username="bob smith"), "1 to 64 characters", None),
    "username_empty": (_admin_args(username=""), "user name is required", None),
    "username_65_chars": (_admin_args(username=LONG_NAME), "1 to 64 characters", None),
    "username_leading_dot": (_admin_args(username=".bob"), "starting with a letter", None),
}


@pytest.mark.parametrize("args, fragment, input", BAD_ADMIN_INPUT.values(),
                         ids=BAD_ADMIN_INPUT.keys())
def test_create_admin_refuses_bad_input_with_one_error_line_and_writes_nothing(
        run, db, make_admin, args, fragment, input):
    make_admin("alice")
    _assert_refused(run, db, args, fragment, input=input)


# users add ------------------------------------------------------------------------------------

def test_users_add_stores_a_local_user_with_display_name_argon2_hash_and_one_clean_audit_event(
        run, db):
    username = "c" * 64  # the longest name allowed
    result = run("users", "add", username, "--email", "carol@example.com",
                 "--password", PASSWORD, "--display-name", "  Carol Example ")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Added local user '{username}'."
    user = db.session.scalar(sa.select(PortalUser).where(PortalUser.username == username))
    assert (user.source, user.email, user.display_name) == (
        "local", "carol@example.com", "Carol Example")
    assert user.password_hash.startswith("$argon2id$")
    assert user.check_password(PASSWORD)
    event = _assert_one_audit_event(db, "user.create")
    assert event.target == username
    assert PASSWORD not in json.dumps(event.details or {})


def _user_args(username="dave", email="dave@example.com", password=PASSWORD, extra=()):
    args = ["users", "add", username, "--email", email, *extra]
    return args + ["--password", password] if password is not None else args


BAD_USER_INPUT = {
    "duplicate": (_user_args(username="carol"), "already exists", None),
    "duplicate_differing_in_case": (_user_args(username="Carol"), "already exists", None),
    "email_without_at": (_user_args(email="dave.example.com"), "not a valid email", None),
    "email_with_space": (_user_args(email="dave @example.com"), "not a valid email", None),
    "email_empty": (_user_args(email=""), "email address is required", None),
    "password_prompted_empty": (_user_args(password=None), "password is required", "\n\n"),
    "password_empty": (_user_args(password=""), "password is required", None),
    "password_too_short": (_user_args(password="1234567"), "at least 8 characters", None),
    "username_with_space": (_user_args(username="da ve"), "1 to 64 characters", None),
    "username_empty": (_user_args(username=""), "user name is required", None),
    "username_65_chars": (_user_args(username=LONG_NAME), "1 to 64 characters", None),
    "username_leading_dot": (_user_args(username=".dave"), "starting with a letter", None),
    "display_name_too_long": (_user_args(extra=["--display-name", "D" * 257]),
                              "at most 256 characters", None),
    "display_name_two_lines": (_user_args(extra=["--display-name", "Dave\nBcc: x@example.com"]),
                               "must be one line", None),
}


@pytest.mark.parametrize("args, fragment, input", BAD_USER_INPUT.values(),
                         ids=BAD_USER_INPUT.keys())
def test_users_add_refuses_bad_input_with_one_error_line_and_writes_nothing(
        run, db, make_user, args, fragment, input):
    make_user("carol")
    _assert_refused(run, db, args, fragment, input=input)


@pytest.mark.parametrize("command", ["create-admin", "users add"])
@pytest.mark.parametrize("email, fragment", LISTS_AND_LINES + NAMED)
def test_an_operator_command_takes_one_address_on_one_line(run, db, command, email, fragment):
    args = _admin_args(email=email) if command == "create-admin" else _user_args(email=email)
    _assert_refused(run, db, args, fragment)


# licenses -------------------------------------------------------------------------------------

def _set_pool(db, total, used, reserved):
    pool = db.session.get(LicensePool, 1)
    pool.total, pool.used, pool.reserved = total, used, reserved
    db.session.commit()  # a savepoint of the test's transaction; the command's rollback keeps it


def test_licenses_set_changes_the_total_and_records_one_audit_event(run, db):
    result = run("licenses", "set", "25")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Licenses: total 25, used 0, reserved 0, remaining 25."
    assert figures() == Figures(25, 0, 0)
    assert _assert_one_audit_event(db, "licenses.set").details == {"total": 25}


def test_licenses_set_accepts_exactly_used_plus_reserved(run, db):
    _set_pool(db, total=10, used=3, reserved=2)

    result = run("licenses", "set", "5")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Licenses: total 5, used 3, reserved 2, remaining 0."


def test_licenses_show_prints_the_four_figures(run, db):
    _set_pool(db, total=10, used=3, reserved=2)

    result = run("licenses", "show")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["total 10", "used 3", "reserved 2", "remaining 5"]


BAD_LICENSES = {
    "negative": ("-1", "0 or more"),
    "word": ("ten", "'ten' is not a whole number"),
    "fraction": ("1.5", "'1.5' is not a whole number"),
    "empty": ("", "is not a whole number"),
    "absurd": (str(10**9), "at most 10,000,000"),
}


@pytest.mark.parametrize("value, fragment", BAD_LICENSES.values(), ids=BAD_LICENSES.keys())
def test_licenses_set_refuses_bad_numbers_with_one_error_line_and_changes_nothing(
        run, db, value, fragment):
    _set_pool(db, total=7, used=1, reserved=1)
    _assert_refused(run, db, ["licenses", "set", "--", value], fragment)
    assert figures() == Figures(7, 1, 1)


def test_licenses_set_below_used_plus_reserved_is_refused_naming_both_and_changes_nothing(
        run, db):
    _set_pool(db, total=10, used=3, reserved=2)
    _assert_refused(run, db, ["licenses", "set", "4"], "3 are used and 2 reserved")
    assert figures() == Figures(10, 3, 2)


# quickstart -----------------------------------------------------------------------------------

def test_quickstart_creates_one_admin_whose_printed_password_signs_in(run, db):
    result = run("quickstart")

    assert result.exit_code == 0, result.output
    username = re.search(r"user name: (\S+)", result.output).group(1)
    password = re.search(r"password:\s+(\S+)", result.output).group(1)
    admin = authenticate(username, password, client_address="127.0.0.1")
    assert admin is not None and admin.username == username
    assert _count(db, AdminUser) == 1
    assert all(password not in json.dumps(event.details or {}) for event in _audit_events(db))


def test_quickstart_fills_in_the_example_companion_once_and_a_second_run_changes_nothing(run, db):
    first = run("quickstart")
    assert "EXAMPLE values" in first.output
    assert db.session.get(CompanionSettings, 1).component_name == EXAMPLE_COMPONENT
    before = _snapshot(db)

    second = run("quickstart")

    assert second.exit_code == 0, second.output
    assert "An admin exists already" in second.output
    assert "password" not in second.output and "EXAMPLE values" not in second.output
    assert _snapshot(db) == before
    assert (_count(db, AdminUser), _count(db, CompanionSettings)) == (1, 1)


# Real processes: `flask --app wsgi …` as an operator types it ---------------------------------

@pytest.fixture(scope="module")
def operator_env(tmp_path_factory):
    """The environment of a fresh install: its own instance folder and an empty database."""
    tmp = tmp_path_factory.mktemp("operator")
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        uri = _fresh_postgres_database(database_url(base), "portal_cli_upgrade")
    else:
        uri = f"sqlite:///{tmp / 'x.db'}"
    inherited = ("FLASK_", "PORTAL_", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.update(PORTAL_INSTANCE_DIR=str(tmp), DATABASE_URL=uri)
    yield env
    if base:
        drop_postgres_database(uri)


def _flask(env, *args):
    flask = Path(sys.executable).with_name("flask")
    return subprocess.run([str(flask), "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def upgraded_env(operator_env):
    result = _flask(operator_env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    return operator_env


def test_db_upgrade_in_a_real_process_leaves_licenses_show_reporting_total_0(upgraded_env):
    result = _flask(upgraded_env, "licenses", "show")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "total 0"


def test_create_admin_in_a_real_process_with_a_bad_email_exits_1_with_one_error_line(
        upgraded_env):
    result = _flask(upgraded_env, "create-admin", "bob", "--email", "bob.example.com",
                    "--password", PASSWORD)

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "not a valid email" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    engine = sa.create_engine(upgraded_env["DATABASE_URL"])
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM admin_users")) == 0
    engine.dispose()


def test_a_command_before_db_upgrade_says_to_run_it_in_one_line(tmp_path):
    inherited = ("FLASK_", "PORTAL_", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.update(PORTAL_INSTANCE_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path}/empty.db")

    result = _flask(env, "licenses", "show")

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "db upgrade" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
