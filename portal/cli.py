"""Operator commands: `flask --app wsgi …` (PRODUCT.md §6).

Each command prints one clear line and exits non-zero on bad input, with nothing half-written:
the domain functions validate everything before they write, and own their transaction.
"""
import sys
from functools import wraps
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup

from portal.accounts.errors import AccountError
from portal.licensing.seats import LicenseError


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _database_errors(command):
    """A database that is missing, not migrated or down gets one line, not a traceback."""
    @wraps(command)
    def wrapped(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            _fail(f"The database is not ready ({reason}); check DATABASE_URL and run "
                  "'flask --app wsgi db upgrade'.")
    return wrapped


def register(app: Flask) -> None:
    app.cli.add_command(create_admin_command)
    app.cli.add_command(licenses)
    app.cli.add_command(users)
    app.cli.add_command(quickstart_command)
    app.cli.add_command(zero_touch)
    app.cli.add_command(pending)
    app.cli.add_command(companion_sim_command)
    app.cli.add_command(outbox)
    app.cli.add_command(webhooks)
    app.cli.add_command(preflight_command)
    app.cli.add_command(bulk_provision_command)
    app.cli.add_command(amapi)
    from portal.demo_data import demo_data_command
    app.cli.add_command(demo_data_command)


@click.command("create-admin")
@click.argument("username")
@click.option("--email", required=True, help="The admin's email address.")
@click.option("--password", help="At least 8 characters. Prompted for when left out.")
@click.option("--mail-recipient", is_flag=True, help="Receives every automatic QR code by mail.")
@click.option("--role", type=click.Choice(["administrator", "helpdesk"]), default="administrator",
              show_default=True, help="Helpdesk: devices, pending enrollments and QR codes only.")
@_database_errors
def create_admin_command(username, email, password, mail_recipient, role):
    """Create an admin of the Management Console."""
    from portal.accounts.admins import create_admin
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                default="", show_default=False)
    try:
        admin = create_admin(username, email, password, mail_recipient=mail_recipient, role=role)
    except AccountError as exc:
        _fail(exc.message)
    click.echo(f"Created admin '{admin.username}'"
               + (", role Helpdesk" if admin.role == "helpdesk" else "")
               + (" (mail recipient)." if admin.mail_recipient else "."))


licenses = AppGroup("licenses", help="Show or set the number of licenses.")


@licenses.command("set")
@click.argument("total", type=str)
@_database_errors
def licenses_set(total):
    """Set the total number of licenses."""
    from portal.licensing.seats import set_total
    try:
        value = int(total, 10)
    except ValueError:
        _fail(f"'{total}' is not a whole number of licenses.")
    try:
        figures = set_total(value)
    except LicenseError as exc:
        _fail(str(exc))
    click.echo(f"Licenses: total {figures.total}, used {figures.used}, "
               f"reserved {figures.reserved}, remaining {figures.remaining}.")


@licenses.command("show")
@_database_errors
def licenses_show():
    """Show total, used, reserved and remaining licenses, as the console shows them."""
    from portal.enrollment.pending import current_figures
    f = current_figures()
    click.echo(f"total {f.total}\nused {f.used}\nreserved {f.reserved}\nremaining {f.remaining}")


users = AppGroup("users", help="Manage local end users.")


@users.command("add")
@click.argument("username")
@click.option("--email", required=True, help="The user's email address.")
@click.option("--password", help="At least 8 characters. Prompted for when left out.")
@click.option("--display-name", help="The name shown to admins and on the device.")
@_database_errors
def users_add(username, email, password, display_name):
    """Add a local user who can sign in to the Self Service Portal."""
    from portal.accounts.users import add_local_user
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                default="", show_default=False)
    try:
        user = add_local_user(username, email, password, display_name=display_name)
    except AccountError as exc:
        _fail(exc.message)
    click.echo(f"Added local user '{user.username}'.")


@click.command("quickstart")
@_database_errors
def quickstart_command():
    """Prepare a fresh install to be tried: a first admin and example Companion values."""
    from portal.accounts.admins import ensure_first_admin
    from portal.settings.companion import seed_example_companion
    created = ensure_first_admin()
    if created:
        admin, password = created
        click.echo("=" * 64)
        click.echo("First admin created. Sign in at /admin with:")
        click.echo(f"  user name: {admin.username}")
        click.echo(f"  password:  {password}")
        click.echo("This password is shown only once.")
        click.echo("=" * 64)
    else:
        click.echo("An admin exists already; no new admin was created.")
    if seed_example_companion():
        click.echo("Companion settings: EXAMPLE values were filled in so you can try the whole "
                   "flow. Replace them under Admin → Companion before real devices scan a code.")


zero_touch = AppGroup("zero-touch", help="The Zero-Touch / Knox list: devices the API refuses.")


@zero_touch.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@_database_errors
def zero_touch_import(file: Path):
    """Add the serial numbers and IMEIs of FILE (one per line; CSV: the first field counts)."""
    from portal.enrollment.zero_touch import ZeroTouchError, import_identifiers, read_lines
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        _fail(f"{file}: no such file.")
    except OSError as exc:
        _fail(f"{file}: cannot be read ({exc.strerror or type(exc).__name__}).")
    try:
        result = import_identifiers(read_lines(data), actor_type="operator", actor="operator")
    except ZeroTouchError as exc:
        _echo_rejected(exc.rejected)
        _fail(f"{file}: {exc.message}")
    click.echo(f"Added {result.added}, already listed {result.duplicates}, "
               f"rejected {len(result.rejected)}.")
    _echo_rejected(result.rejected)


def _echo_rejected(rejected) -> None:
    for line_no, _text, reason in rejected:
        click.echo(f"line {line_no}: {reason}")


@zero_touch.command("list")
@click.option("--search", default="", help="Only identifiers containing this text.")
@_database_errors
def zero_touch_list(search):
    """Print the serial numbers and IMEIs on the list, one per line."""
    from portal.database import db
    from portal.enrollment.zero_touch import search as search_entries
    count = 0
    for entry in db.session.scalars(search_entries(search)):
        click.echo(f"{entry.identifier}\t{entry.kind}")
        count += 1
    click.echo(f"{count} on the list.", err=True)


pending = AppGroup("pending", help="Pending enrollments of automatic QR codes.")


@pending.command("expire")
@click.option("--loop", "interval", type=click.IntRange(min=10), default=None, metavar="SECONDS",
              help="Keep running, checking every SECONDS (for a service or a container).")
@_database_errors
def pending_expire(interval):
    """End pending enrollments whose OTP expired and return their licenses."""
    import time

    from portal.enrollment.pending import expire_due
    while True:
        ended = expire_due()
        click.echo(f"Expired {ended} pending enrollment{'s' if ended != 1 else ''}.")
        if interval is None:
            return
        time.sleep(interval)


@click.command("companion-sim")
@click.argument("qr", type=click.Path(exists=True, dir_okay=False))
@click.option("--serial", default="SIM0000001", show_default=True, help="Serial number.")
@click.option("--imei", help="15-digit IMEI.")
@click.option("--manufacturer", default="Simulated", show_default=True)
@click.option("--model", default="Companion Simulator", show_default=True)
@click.option("--api-level", type=int, default=34, show_default=True, help="Android API level.")
@click.option("--username", help="Self Service Portal: the user who signs in.")
@click.option("--password", help="Self Service Portal: that user's password.")
@click.option("--fail", is_flag=True, help="Report that provisioning failed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
def companion_sim_command(qr, serial, imei, manufacturer, model, api_level, username, password,
                          fail, as_json):
    """Play a device: read QR (image or text), check it, enroll against its server_url."""
    from portal.simulator.run import simulate
    report = simulate(qr, serial=serial, imei=imei, manufacturer=manufacturer, model=model,
                      api_level=api_level, username=username, password=password, fail=fail)
    report.print(as_json)
    raise SystemExit(0 if report.ok else 1)


outbox = AppGroup("outbox", help="The mail outbox: deliver, list and send again.")


@outbox.command("send")
@click.option("--loop", is_flag=True, help="Keep running as the mail worker until SIGTERM or "
                                           "Ctrl+C (the current message is finished first).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              metavar="SECONDS", help="With --loop: how often to look for due messages.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Send at most this many messages per pass.")
@_database_errors
def outbox_send(loop, interval, limit):
    """Deliver the queued mail that is due; prints how many were sent, retry later, failed."""
    from portal.mail.delivery import MailNotConfigured, deliver_due
    _worker("Outbox", lambda should_stop: deliver_due(limit=limit, should_stop=should_stop),
            lambda counts: f"Sent {counts.sent}, retrying {counts.retrying}, "
                           f"failed {counts.failed}.",
            loop=loop, interval=interval, not_ready=(MailNotConfigured, "Mail is not sent"))


def _amapi_tasks_pass() -> None:
    """What the portal owes Google (amapi.tasks: tokens, sign-in details, devices to delete),
    tried in each pass of a worker; a failure is recorded on the task and retried later."""
    from portal.amapi.tasks import run_due
    from portal.database import db
    try:
        done, owed = run_due()
    except Exception as exc:  # never stop the worker's own deliveries (nor on a lost database)
        db.session.rollback()
        click.echo(f"Android Management API tasks: {exc}", err=True)
        return
    if done or owed:
        click.echo(f"Android Management API: done {done}, still owed {owed}.")


def _worker(name: str, deliver, report, *, loop: bool, interval: float,
            not_ready: tuple[type[Exception], str] | None = None,
            amapi_tasks: bool = True) -> None:
    """The outbox's and the webhooks' worker: one pass of deliver(should_stop) (counts with a
    .total), or with loop one every interval seconds until SIGTERM or Ctrl+C (the current
    message finished first). A database that stops answering is waited for; one that does not
    answer at the first pass, or a not_ready exception then, ends the command. amapi_tasks:
    each pass also runs what is owed to Google (amapi.tasks.run_due)."""
    import signal
    import threading

    from portal.database import db
    stop = threading.Event()
    if loop:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        click.echo(f"{name} worker started: every {interval:g} s; stop with SIGTERM or Ctrl+C.")
    first, not_ready = True, not_ready or (type("NeverRaised", (Exception,), {}), "")
    while not stop.is_set():
        try:
            counts = deliver(stop.is_set)
        except not_ready[0] as exc:
            if first:
                _fail(f"{not_ready[1]}: {exc}")
            click.echo(f"{not_ready[1]}: {exc}", err=True)
        except sa.exc.OperationalError as exc:
            if first or not loop:
                raise
            db.session.rollback()
            click.echo(f"The database is not reachable; retrying ({exc.orig}).", err=True)
        else:
            if not loop or counts.total:
                click.echo(report(counts))
        if amapi_tasks:
            _amapi_tasks_pass()
        first = False
        if not loop:
            return
        stop.wait(interval)
    click.echo(f"{name} worker stopped.")


@outbox.command("retry")
@click.argument("message_id", type=int)
@_database_errors
def outbox_retry(message_id):
    """Queue the failed message MESSAGE_ID again, with its attempts reset."""
    from portal.mail.outbox import OutboxError, resend
    try:
        message = resend(message_id, actor="operator", actor_type="operator")
    except OutboxError as exc:
        _fail(str(exc))
    click.echo(f"Message {message.id} to {message.recipient} is queued again.")


@outbox.command("list")
@click.option("--status", type=click.Choice(["queued", "sending", "sent", "failed"]),
              help="Only messages with this status.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@_database_errors
def outbox_list(status, limit):
    """Print the newest messages: id, status, attempts, kind, recipient, QR code, last error."""
    from portal.database import db
    from portal.mail.outbox import listing
    rows = db.session.execute(listing(status).limit(limit)).all()
    for message, public_id in rows:
        when = message.sent_at or message.next_attempt_at
        click.echo("\t".join([str(message.id), message.status, str(message.attempts),
                              message.kind, message.recipient, public_id or "-",
                              when.strftime("%Y-%m-%d %H:%M:%S"),
                              (message.last_error or "").replace("\n", " ")]))
    click.echo(f"{len(rows)} message{'s' if len(rows) != 1 else ''}.", err=True)


webhooks = AppGroup("webhooks", help="Webhook deliveries: deliver, list and send again.")


@webhooks.command("send")
@click.option("--loop", is_flag=True, help="Keep running as the webhook worker until SIGTERM or "
                                           "Ctrl+C (the current delivery is finished first).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              metavar="SECONDS", help="With --loop: how often to look for due deliveries.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Send at most this many deliveries per pass.")
@_database_errors
def webhooks_send(loop, interval, limit):
    """POST the webhook deliveries that are due; prints how many were delivered, retry later,
    failed."""
    from portal.webhooks.delivery import deliver_due
    _worker("Webhook", lambda should_stop: deliver_due(limit=limit, should_stop=should_stop),
            lambda counts: f"Delivered {counts.delivered}, retrying {counts.retrying}, "
                           f"failed {counts.failed}.",
            loop=loop, interval=interval)


@webhooks.command("retry")
@click.argument("delivery_id", type=int)
@_database_errors
def webhooks_retry(delivery_id):
    """Queue the delivered or failed delivery DELIVERY_ID again (same event id)."""
    from functools import partial

    from portal.audit.log import record
    from portal.webhooks.endpoints import WebhookError, resend
    try:
        delivery = resend(delivery_id, audit=partial(record, actor_type="operator",
                                                     actor="operator"))
    except WebhookError as exc:
        _fail(exc.message)
    click.echo(f"Delivery {delivery.id} ({delivery.event_type}, {delivery.event_id}) is queued "
               "again.")


@webhooks.command("list")
@click.option("--status", type=click.Choice(["queued", "sending", "delivered", "failed"]),
              help="Only deliveries with this status.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@_database_errors
def webhooks_list(status, limit):
    """Print the newest deliveries: id, status, attempts, event, event id, URL, HTTP status,
    last error."""
    from portal.database import db
    from portal.webhooks.endpoints import deliveries
    rows = db.session.scalars(deliveries(status).limit(limit)).all()
    for delivery in rows:
        click.echo("\t".join([str(delivery.id), delivery.status, str(delivery.attempts),
                              delivery.event_type, delivery.event_id, delivery.endpoint.url,
                              str(delivery.last_status or "-"),
                              (delivery.last_error or "").replace("\n", " ")]))
    click.echo(f"{len(rows)} deliver{'ies' if len(rows) != 1 else 'y'}.", err=True)


@click.command("preflight")
@_database_errors
def preflight_command():
    """Check the public URL, the Companion's download, mail and directories (as Admin →
    Preflight does); exit 1 when a check fails, 0 when only warnings remain."""
    from portal.preflight import Status, run_and_save
    run = run_and_save(actor_type="operator", actor="flask preflight")
    for check in run.checks:
        line = f"{check.status.upper():7}  {check.name}: {check.found}"
        click.echo(line + (f" Fix: {check.fix}" if check.fix else ""))
    click.echo(f"{run.failures} failures, {run.warnings} warnings.")
    if any(check.status == Status.FAILURE for check in run.checks):
        raise SystemExit(1)


def _otp_validity(text: str | None):
    if text is None:
        return None
    if text.strip().lower() == "unlimited":
        return "unlimited"
    if not text.strip().isdigit() or len(text.strip()) > 6:
        _fail(f"--otp-validity '{text}': give a number of hours (1 to 87,600) or 'unlimited'.")
    return int(text)


@click.command("bulk-provision")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--profile", "profile_name", required=True,
              help="The network profile of every QR code (Admin → Network profiles).")
@click.option("--otp-validity", default=None, metavar="HOURS|unlimited",
              help="The OTP validity of the whole batch; default: the OTP policy's.")
@click.option("--created-by", default=None, metavar="ADMIN",
              help="The admin the batch is made for (their role's rules apply); "
                   "default: the operator.")
@click.option("--management", type=click.Choice(["companion", "adp"]), default=None,
              help="For rows without a management cell: the Companion or Android Device "
                   "Policy (adp); default: the network profile's.")
@_database_errors
def bulk_provision_command(file: Path, profile_name, otp_validity, created_by, management):
    """Create a batch of Automatic Provisioning QR codes from FILE (the CSV of Devices →
    Pending → Bulk provisioning): every row checked first; on any bad row nothing is saved."""
    from flask import current_app

    from portal.accounts.models import AdminUser
    from portal.database import db
    from portal.provisioning import bulk
    from portal.settings import network_profiles
    try:
        if file.stat().st_size > bulk.MAX_BYTES:  # refused before it is read
            _fail(f"{file}: larger than {bulk.MAX_BYTES // 2**20} MB; split it.")
        data = file.read_bytes()
    except FileNotFoundError:
        _fail(f"{file}: no such file.")
    except OSError as exc:
        _fail(f"{file}: cannot be read ({exc.strerror or type(exc).__name__}).")
    profile = network_profiles.find(profile_name)
    if profile is None:
        _fail(f"--profile '{profile_name}': no network profile has this name.")
    admin = None
    if created_by is not None:
        admin = db.session.scalar(sa.select(AdminUser).where(AdminUser.username == created_by))
        if admin is None:
            _fail(f"--created-by '{created_by}': no admin has this name.")
    options = {"network_profile_id": profile.id, "otp_validity": _otp_validity(otp_validity),
               "created_by": admin, "server_url": current_app.config["PORTAL_PUBLIC_URL"]}
    try:
        rows = bulk.parse_csv(data)
        preview = bulk.preview_rows(rows, management=management, **options)
        if not preview.ok:
            raise bulk.BulkError(preview.problems)
    except bulk.BulkError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        _fail(f"{file}: {len(exc.problems):,} problem{'s' if len(exc.problems) != 1 else ''}; "
              "nothing was saved.")
    staged = bulk.stage(preview, name=file.name, network_profile_id=profile.id,
                        otp_validity=options["otp_validity"], created_by=admin)
    batch = bulk.start_batch(staged, created_by=admin)
    with click.progressbar(length=batch.row_count, label="Preparing QR codes",
                           file=sys.stderr) as bar:
        shown = [0]

        def advance(done, _total):
            bar.update(done - shown[0])
            shown[0] = done
        batch = bulk.run_batch(batch.id, server_url=options["server_url"], progress=advance)
    if batch.state != "created":
        _fail(f"Batch {batch.public_id} failed: {batch.error}")
    click.echo(f"Created batch {batch.public_id}: {batch.row_count:,} QR code"
               f"{'s' if batch.row_count != 1 else ''}, {preview.total:,} licenses reserved.")


amapi = AppGroup("amapi", help="Android Management API: reconcile devices with Google, and make "
                               "the calls owed to Google.")


@amapi.command("sync")
@_database_errors
def amapi_sync():
    """List the enterprise's devices at Google (enterprises.devices.list): record those the
    notifications missed, retire ours that Google no longer lists (their licenses back)."""
    from portal.amapi.client import AmapiError
    from portal.enrollment.device_policy import NotConfigured, sync
    try:
        result = sync()
    except (AmapiError, NotConfigured) as exc:
        _fail(f"The devices could not be listed at Google: {exc.message}")
    click.echo(f"Listed {result.listed} device{'s' if result.listed != 1 else ''} at Google: "
               f"{result.new} new, {result.retired} retired, {result.not_ours} not from this "
               "portal.")


class _Owed(tuple):
    @property
    def total(self) -> int:
        return self[0] + self[1]


@amapi.command("tasks")
@click.option("--loop", is_flag=True, help="Keep running as the worker until SIGTERM or Ctrl+C.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              metavar="SECONDS", help="With --loop: how often to look for due calls.")
@_database_errors
def amapi_tasks(loop, interval):
    """Make the calls owed to Google that are due (delete used-up tokens, sign-in details,
    retired devices); prints how many were done and how many are still owed."""
    from portal.amapi.tasks import run_due
    _worker("Android Management API", lambda should_stop: _Owed(run_due()),
            lambda counts: f"Done {counts[0]}, still owed {counts[1]}.",
            loop=loop, interval=interval, amapi_tasks=False)  # it is the tasks' own pass
