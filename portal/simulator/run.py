"""The simulator's run: read, check, describe, enroll; one report for people or scripts."""
import json
from dataclasses import asdict, dataclass, field

import click

from portal.simulator.checks import check_payload, describe
from portal.simulator.device import Device, SimulationError, enroll
from portal.simulator.reader import ReadError, read_qr


@dataclass
class Report:
    ok: bool = False
    code: str | None = None
    message: str | None = None
    option: str | None = None
    qr_id: str | None = None
    device_id: str | None = None
    state: str | None = None
    user: dict | None = None
    problems: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    def print(self, as_json: bool) -> None:
        if as_json:
            click.echo(json.dumps(asdict(self), sort_keys=True))
            return
        for problem in self.problems:
            click.echo(f"Problem: {problem}", err=True)
        for step in self.steps:
            click.echo(f"- {step}")
        if self.ok:
            click.echo(f"Enrolled: device {self.device_id} is {self.state}.")
        else:
            click.echo(f"Error: {self.code}: {self.message}", err=True)


def simulate(path: str, *, serial, imei, manufacturer, model, api_level, username, password,
             fail) -> Report:
    report = Report()
    try:
        payload, report.problems = check_payload(read_qr(path), api_level)
    except (ReadError, OSError) as exc:
        report.code, report.message = "unreadable", str(exc)
        return report
    if report.problems:
        report.code = "invalid_payload"
        report.message = "Android would refuse or misread this QR code."
        return report
    extras = payload["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    report.option, report.qr_id = extras["option"], extras["qr_id"]
    report.steps = describe(payload)
    device = Device(serial, imei, manufacturer, model, api_level)
    try:
        outcome = enroll(payload, device, username=username, password=password, fail=fail)
    except SimulationError as exc:
        report.code, report.message = exc.code, exc.message
        return report
    report.steps += outcome.log
    report.device_id, report.state, report.user = outcome.device_id, outcome.state, outcome.user
    report.ok = outcome.state == "enrolled"
    if not report.ok:
        report.code, report.message = "provisioning_failed", "The device reported a failure."
    return report
