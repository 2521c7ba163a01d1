"""A device's Management (its QR code's: the Companion or Google's Android Device Policy) in the
Admin API's device JSON (`management`: companion|adp, beside the fields clients already read) and in the Devices CSV export (a last column "Management"). A Companion device redeems
through the domain function; an Android Device Policy device enrolls at the loopback stand-in
of Google's API and is recorded as its notification records it."""
import csv
import io

import jsonschema_rs
import pytest

from portal.enrollment.device_policy import record_device
from portal.enrollment.devices import CSV_HEADER
from portal.licensing.seats import set_total
from tests.admin.test_devices import enroll as redeem
from tests.adminapi.conftest import BASE
from tests.enrollment.amapi_helpers import adp_qr_code, device_named
from tests.enrollment.amapi_helpers import enroll as enroll_at_google

FIELDS = ["id", "serial_number", "imei", "manufacturer", "model", "android_api_level",
          "android_version", "state", "user", "qr_id", "created_at", "enrolled_at",
          "last_contact_at", "retired_at", "management"]


@pytest.fixture
def two_devices(db, amapi_connected, make_qr_code):
    """{"companion": public id, "adp": public id}."""
    set_total(20)
    companion = redeem(make_qr_code("auto", usage_count=1), "R58NCOMP0001")
    phone = enroll_at_google(amapi_connected, adp_qr_code(make_qr_code), serial="R58NADP00001")
    record_device(phone, source="push")
    return {"companion": companion.public_id, "adp": device_named(phone["name"]).public_id}


def conforms(client, answer: dict) -> dict:
    document = client.get(f"{BASE}/openapi.json").get_json()
    validator = jsonschema_rs.validator_for({"$ref": "#/components/schemas/Device",
                                             "components": document["components"]})
    assert [error.message for error in validator.iter_errors(answer)] == []
    return answer


def test_the_device_json_names_its_management(client, two_devices, read):
    listed = client.get(f"{BASE}/devices", headers=read).get_json()["items"]
    assert {item["id"]: item["management"] for item in listed} == {
        two_devices["companion"]: "companion", two_devices["adp"]: "adp"}
    for item in listed:
        assert sorted(conforms(client, item)) == sorted(FIELDS)
    for management, device_id in two_devices.items():
        one = client.get(f"{BASE}/devices/{device_id}", headers=read).get_json()
        assert sorted(conforms(client, one)) == sorted(FIELDS) and one["management"] == management


def test_the_openapi_document_requires_it_and_refuses_other_values(client, two_devices, read):
    one = client.get(f"{BASE}/devices/{two_devices['adp']}", headers=read).get_json()
    document = client.get(f"{BASE}/openapi.json").get_json()
    assert document["components"]["schemas"]["Device"]["required"][-1] == "management"
    validator = jsonschema_rs.validator_for({"$ref": "#/components/schemas/Device",
                                             "components": document["components"]})
    assert not validator.is_valid({**one, "management": "android_device_policy"})
    assert not validator.is_valid({k: v for k, v in one.items() if k != "management"})


def test_retire_answers_the_device_with_its_management(client, two_devices, provision):
    answer = client.post(f"{BASE}/devices/{two_devices['adp']}/retire", headers=provision)
    assert answer.status_code == 200
    assert conforms(client, answer.get_json()["device"])["management"] == "adp"


def test_the_csv_export_has_a_management_column_last(admin_client, two_devices):
    response = admin_client.get("/admin/devices/export.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["Serial number", "IMEI", "Manufacturer", "Model", "Android version",
                       "API level", "User", "QR ID", "State", "Created", "Enrolled at",
                       "Last contact", "Retired at", "Management"] == list(CSV_HEADER)
    assert {row[0]: row[-1] for row in rows[1:]} == {
        "R58NCOMP0001": "Companion", "R58NADP00001": "Android Device Policy"}
    assert all(len(row) == len(CSV_HEADER) for row in rows)
    assert {row[0]: row[8] for row in rows[1:]} == {"R58NCOMP0001": "provisioning",
                                                    "R58NADP00001": "enrolled"}
