"""Admin → Network profiles (list, new, edit keeping the password, delete with confirmation,
roles, every bad input) and Saved profile in the wizard: the QR code gets the profile's network,
frozen, and its page says when the profile has changed since."""
import html as html_lib
import json
import re

import pytest
import sqlalchemy as sa

from portal import vault
from portal.admin import network_profiles as profiles_view
from portal.enrollment.models import QrCode
from portal.licensing.seats import set_total
from portal.settings import network_profiles
from portal.settings.companion import seed_example_companion
from portal.settings.models import NetworkProfile
from portal.settings.network_profiles import ProfileValues
from tests.conftest import csrf_token, csrf_token_from
from tests.support.qr import decode_qr

LIST = "/admin/settings/network-profiles"
NEW = LIST + "/new"
WIZARD = "/admin/devices/pending/new"
SECRET = "school-secret-1"


def _form(**overrides):
    values = {"name": "School Wi-Fi", "network": "wifi", "wifi_ssid": "School",
              "wifi_security": "WPA", "wifi_password": SECRET}
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def _post(client, url, page, **data):
    return client.post(url, data={"csrf_token": csrf_token(client, page), **data})


def _create(client, **overrides):
    return _post(client, LIST, NEW, **_form(**overrides))


def _profile(name="School Wi-Fi", **overrides) -> NetworkProfile:
    values = dict(name=name, network="wifi", wifi_ssid="School", wifi_security="WPA",
                  wifi_password=SECRET)
    values.update(overrides)
    return network_profiles.save(ProfileValues(**values), actor="setup")


def _count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(NetworkProfile))


def _text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def _error(html: str, field: str) -> str:
    return re.search(rf'<span class="error" id="{field}-error">(.*?)</span>', html, re.S).group(1)


# --- Admin → Network profiles ---

def test_new_profile_is_listed_with_its_network_version_author_and_qr_count(admin_client, db):
    response = _create(admin_client)

    assert response.status_code == 303 and response.location.endswith(LIST)
    page = _text(admin_client.get(LIST))
    assert "The network profile School Wi-Fi is saved." in page
    row = re.search(r'<tr id="network-profile-\d+">(.*?)</tr>', page, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", cell).strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[:4] == ["School Wi-Fi", "Wi-Fi School (WPA)", "Companion", "1"]
    assert cells[4].endswith(f"UTC by {admin_client.admin.username}") and cells[5] == "0"
    assert SECRET not in page
    profile = network_profiles.find("School Wi-Fi")
    assert vault.decrypt(profile.wifi_password_enc) == SECRET


def test_a_mobile_data_profile_and_a_hidden_open_network(admin_client, db):
    assert _create(admin_client, name="Field phones", network="mobile", wifi_ssid="ignored",
                   wifi_password="").status_code == 303
    assert _create(admin_client, name="Guests", wifi_ssid="Guest", wifi_security="NONE",
                   wifi_password="typed anyway", wifi_hidden="y").status_code == 303

    page = _text(admin_client.get(LIST))
    assert "Mobile data" in page and "Wi-Fi Guest (open, hidden)" in page
    mobile, guests = network_profiles.find("Field phones"), network_profiles.find("Guests")
    assert (mobile.network, mobile.wifi_ssid, mobile.wifi_password_enc) == ("mobile", None, None)
    assert (guests.wifi_security, guests.wifi_hidden, guests.wifi_password_enc) == (
        "NONE", True, None)


def test_the_form_has_the_wizards_field_names_labels_and_hints(admin_client, db):
    form_page = _text(admin_client.get(NEW))
    wizard_page = _text(admin_client.get(WIZARD))
    for field in ("wifi_ssid", "wifi_security", "wifi_password", "wifi_hidden"):
        assert f'name="{field}"' in form_page, field
        label = re.search(rf'<label for="{field}"[^>]*>(.*?)</label>', form_page, re.S).group(1)
        assert re.sub(r"<[^>]+>", "", label).strip() in wizard_page
    for hint in ("The network name exactly as broadcast, 1 to 32 bytes, without quotes.",
                 "WPA: 8 to 63 characters. WEP: 5 or 13 characters, or 10 or 26 hex digits."):
        assert hint in form_page and hint in wizard_page
    assert 'value="EAP"' not in form_page  # enterprise Wi-Fi stays the wizard's
    assert 'class="card settings-form wizard"' in form_page  # the wizard's show/hide rules


def test_edit_with_an_empty_password_keeps_it_and_never_shows_it(admin_client, db):
    profile = _profile()
    url = f"{LIST}/{profile.id}"
    page = _text(admin_client.get(url))
    assert "Leave it empty to keep the stored password; it is never shown again." in page
    assert SECRET not in page and vault.decrypt(profile.wifi_password_enc) not in page
    password_input = re.search(r'<input[^>]*name="wifi_password"[^>]*>', page).group(0)
    assert 'value=""' in password_input or "value=" not in password_input
    assert 'value="School"' in page and 'value="School Wi-Fi"' in page

    response = _post(admin_client, url, url, **_form(name="School Wi-Fi (main)",
                                                     wifi_password=""))

    assert response.status_code == 303
    db.session.refresh(profile)
    assert (profile.name, profile.version) == ("School Wi-Fi (main)", 1)
    assert network_profiles.request_values(profile)["wifi_password"] == SECRET


def test_edit_of_the_network_makes_a_new_version(admin_client, db):
    profile = _profile()
    url = f"{LIST}/{profile.id}"

    response = _post(admin_client, url, url, **_form(wifi_ssid="School-5G", wifi_password=""))

    assert response.status_code == 303
    assert "saved (version 2)" in _text(admin_client.get(LIST))
    db.session.refresh(profile)
    assert (profile.version, profile.wifi_ssid) == (2, "School-5G")
    assert network_profiles.request_values(profile)["wifi_password"] == SECRET


BAD_INPUT = [
    ({"name": ""}, "name", "Enter a name for the profile."),
    ({"name": "x" * 101}, "name", "at most 100 characters"),
    ({"name": "School\r\nWi-Fi"}, "name", "one line of text"),
    ({"network": "lan"}, "network", "Choose Wi-Fi or Mobile data."),
    ({"wifi_ssid": ""}, "wifi_ssid", "SSID"),
    ({"wifi_ssid": "x" * 33}, "wifi_ssid", "32 bytes"),
    ({"wifi_ssid": "é" * 17}, "wifi_ssid", "32 bytes"),
    ({"wifi_ssid": "School\r\nWi-Fi"}, "wifi_ssid", None),
    ({"wifi_security": "EAP"}, "wifi_security", "enterprise Wi-Fi (EAP) in the wizard"),
    ({"wifi_security": "XYZ"}, "wifi_security", None),
    ({"wifi_password": ""}, "wifi_password", None),
    ({"wifi_password": "short"}, "wifi_password", "8–63 characters long"),
    ({"wifi_password": "x" * 64}, "wifi_password", "8–63 characters long"),
    ({"wifi_password": "pass\nword-long"}, "wifi_password", None),
    ({"wifi_security": "WEP", "wifi_password": "abcd"}, "wifi_password", None),
    ({"wifi_security": "WEP", "wifi_password": "abcdef"}, "wifi_password", None),
    ({"wifi_security": "WEP", "wifi_password": "0123456789abcdef0123456789"[:11]},
     "wifi_password", None),
    ({"wifi_security": "WEP", "wifi_password": "zz23456789"}, "wifi_password", None),
]


@pytest.mark.parametrize("overrides, field, message", BAD_INPUT)
def test_bad_input_is_refused_beside_its_field_and_keeps_the_rest(admin_client, db, overrides,
                                                                  field, message):
    typed = _form(name="Library", wifi_ssid="Library-WLAN", **{
        key: value for key, value in overrides.items() if key not in ("name", "wifi_ssid")})
    typed.update({key: value for key, value in overrides.items()
                  if key in ("name", "wifi_ssid") and value is not None})
    typed = {key: value for key, value in typed.items()
             if value is not None and overrides.get(key, "") is not None}

    response = _post(admin_client, LIST, NEW, **typed)

    assert response.status_code == 422
    page = _text(response)
    assert _error(page, field), (field, page)
    if message:
        assert message in _error(page, field)
    assert "problem" in page and f'href="#{field}"' in page  # the summary links to it
    assert _count(db) == 0
    for name in ("name", "wifi_ssid"):  # what was typed comes back (but the password)
        if name != field and typed.get(name):
            assert f'value="{html_lib.escape(typed[name])}"' in response.get_data(as_text=True)
    if typed.get("wifi_password"):
        assert typed["wifi_password"] not in page


@pytest.mark.parametrize("password", ["abcde", "abcdefghijklm", "0123456789",
                                      "0123456789abcdef0123456789"])
def test_every_wep_length_android_takes_is_accepted(admin_client, db, password):
    response = _create(admin_client, wifi_security="WEP", wifi_password=password)
    assert response.status_code == 303, _text(response)


def test_a_duplicate_name_is_refused_whatever_its_case(admin_client, db):
    _profile("Staff")

    response = _create(admin_client, name=" STAFF ")

    assert response.status_code == 422
    assert "A network profile named 'Staff' already exists." in _error(_text(response), "name")
    assert _count(db) == 1


def test_renaming_onto_another_profile_is_refused(admin_client, db):
    _profile("Staff")
    other = _profile("Guests")
    url = f"{LIST}/{other.id}"

    response = _post(admin_client, url, url, **_form(name="staff", wifi_password=""))

    assert response.status_code == 422 and "already exists" in _error(_text(response), "name")
    db.session.refresh(other)
    assert other.name == "Guests"


def test_delete_asks_first_naming_the_qr_codes_that_keep_their_network(admin_client, db,
                                                                        make_qr_code):
    profile = _profile()
    made = [make_qr_code("ssp", network_profile_id=profile.id) for _ in range(2)]
    url = f"{LIST}/{profile.id}/delete"

    page = _text(admin_client.get(url))

    assert "Delete the network profile School Wi-Fi?" in page
    assert "2 QR codes were made from it: they keep the network they were made with." in page
    assert _count(db) == 1  # a GET deletes nothing
    response = _post(admin_client, url, url)
    assert response.status_code == 303 and response.location.endswith(LIST)
    assert _count(db) == 0
    assert "The network profile School Wi-Fi is deleted." in _text(admin_client.get(LIST))
    for qr in made:
        db.session.refresh(qr)
        assert qr.network_profile_id is None and json.loads(qr.payload_text())[
            "android.app.extra.PROVISIONING_WIFI_SSID"] == "School"


def test_the_list_counts_the_qr_codes_made_from_each_profile(admin_client, db, make_qr_code):
    school, _ = _profile(), _profile("Guests", wifi_ssid="Guest", wifi_security="NONE",
                                     wifi_password=None)
    for _ in range(3):
        make_qr_code("ssp", network_profile_id=school.id)

    page = _text(admin_client.get(LIST))

    counts = re.findall(r'<tr id="network-profile-\d+">.*?<td>([\d,]+)</td>\s*<td class="row',
                        page, re.S)
    assert counts == ["0", "3"]  # by name: Guests, School Wi-Fi


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr id="network-profile-\d+">\s*<td><a [^>]*>(.*?)</a>', html)


@pytest.fixture
def seven_profiles(db, monkeypatch, make_qr_code):
    """Seven profiles, three a page (in name order: Net 1 … Net 7); Net 7 made 2 QR codes."""
    monkeypatch.setattr(profiles_view, "PAGE_SIZE", 3)
    made = [_profile(f"Net {n}", wifi_ssid=f"Net{n}") for n in (4, 7, 1, 6, 2, 5, 3)]
    for _ in range(2):
        make_qr_code("ssp", network_profile_id=made[1].id)
    return [f"Net {n}" for n in range(1, 8)]


def test_the_list_pages_by_name_and_htmx_gets_only_the_table(admin_client, seven_profiles):
    first = _text(admin_client.get(LIST))
    second = admin_client.get(LIST + "?page=2", headers={"HX-Request": "true"})
    third = _text(admin_client.get(LIST + "?page=3"))

    assert _rows(first) == seven_profiles[:3] and "Page 1 of 3 (7 profiles)" in first
    assert f'href="{LIST}?page=2"' in first and 'rel="prev"' not in first
    html = _text(second)
    assert html.startswith('<div id="network-profile-table"') and "HX-Request" in second.vary
    assert _rows(html) == seven_profiles[3:6] and "Page 2 of 3" in html
    assert f'href="{LIST}?page=1"' in html and f'href="{LIST}?page=3"' in html
    assert _rows(third) == ["Net 7"] and 'rel="next"' not in third
    # The QR codes made from a profile on a later page are counted too (one query per page).
    assert re.search(r'<td>2</td>\s*<td class="row-actions">', third)


@pytest.mark.parametrize("page, shown", [
    ("abc", 1), ("-1", 1), ("0", 1), ("", 1), ("1.5", 1), ("٣", 1), ("99999", 3),
    ("99999999999999999999999", 1), ("3", 3)])
def test_an_edited_page_number_shows_a_page_not_an_error(admin_client, seven_profiles, page,
                                                         shown):
    """As every list read by offset: garbage reads as page 1, a number past the end as the
    last page."""
    response = admin_client.get(LIST, query_string={"page": page})

    assert response.status_code == 200
    html = _text(response)
    assert f"Page {shown} of 3 (7 profiles)" in html
    assert _rows(html) == seven_profiles[(shown - 1) * 3:shown * 3]


@pytest.mark.parametrize("suffix", ["/0", "/99999", "/2147483648", "/9223372036854775807",
                                    "/99999999999999999999999", "/-1", "/abc", "/1.5",
                                    "/99999/delete", "/9223372036854775807/delete"])
def test_edited_ids_in_urls_are_404_not_500(admin_client, db, suffix):
    _profile()
    assert admin_client.get(LIST + suffix).status_code == 404
    token = csrf_token(admin_client, LIST)
    assert admin_client.post(LIST + suffix, data={"csrf_token": token}).status_code in (404, 405)
    assert _count(db) == 1


def test_a_post_without_the_csrf_token_changes_nothing(admin_client, db):
    profile = _profile()
    assert admin_client.post(LIST, data=_form(name="Other")).status_code == 400
    assert admin_client.post(f"{LIST}/{profile.id}/delete").status_code == 400
    assert _count(db) == 1


def test_helpdesk_may_not_manage_profiles_but_uses_them_in_the_wizard(helpdesk_client, db):
    profile = _profile()
    for url in (LIST, NEW, f"{LIST}/{profile.id}", f"{LIST}/{profile.id}/delete"):
        assert helpdesk_client.get(url).status_code == 403, url
    token = csrf_token(helpdesk_client, WIZARD)
    for url in (LIST, f"{LIST}/{profile.id}", f"{LIST}/{profile.id}/delete"):
        assert helpdesk_client.post(url, data={"csrf_token": token, **_form(name="X")}) \
            .status_code == 403, url
    assert _count(db) == 1 and network_profiles.find("School Wi-Fi").version == 1

    wizard = _text(helpdesk_client.get(WIZARD))
    assert "Network profiles</a>" not in wizard  # not in the Helpdesk's menu
    assert "School Wi-Fi — Wi-Fi School (WPA)" in wizard


def test_the_admin_menu_lists_network_profiles(admin_client, db):
    nav = re.search(r'<nav class="mainnav".*?</nav>', admin_client.get(LIST).get_data(
        as_text=True), re.S).group(0)
    assert f'<a href="{LIST}"' in nav and ">Network profiles</a>" in nav


# --- Saved profile in the wizard ---

@pytest.fixture
def wizard(admin_client, make_user, db):
    seed_example_companion()
    set_total(20)
    make_user("alice", email="alice@example.com")
    admin_client.token = csrf_token_from(admin_client.get(WIZARD).get_data(as_text=True))
    return admin_client


def _wizard_form(client, **overrides):
    data = {"csrf_token": client.token, "option": "auto", "user_type": "local",
            "username": "alice", "lang": "en", "usage_count": "2", "network": "profile",
            # typed before Saved profile was chosen: hidden, so never read
            "wifi_ssid": "Typed-WLAN", "wifi_security": "EAP", "wifi_password": "typed-pass",
            "wifi_identity": "", "proxy": "manual", "proxy_host": ""}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_the_wizard_offers_saved_profiles_by_name_and_network(wizard, db):
    _profile()
    _profile("Field phones", network="mobile", wifi_ssid=None, wifi_security=None,
             wifi_password=None)

    page = _text(wizard.get(WIZARD))

    assert re.search(r'<input[^>]*name="network"[^>]*value="profile"', page)
    assert "Saved profile" in page
    select = re.search(r'<select[^>]*name="network_profile".*?</select>', page, re.S).group(0)
    assert re.findall(r"<option[^>]*>([^<]*)</option>", select) == [
        "Choose a profile", "Field phones — Mobile data", "School Wi-Fi — Wi-Fi School (WPA)"]
    assert 'id="network_profile-field" data-when="profile"' in page
    assert SECRET not in page


def test_without_profiles_the_choice_says_so_and_links_to_them(wizard, db):
    page = _text(wizard.get(WIZARD))

    note = re.search(r'<p class="note" id="no-network-profiles">(.*?)</p>', page, re.S).group(1)
    assert "No network profile is saved yet." in note and f'href="{NEW}"' in note

    response = wizard.post("/admin/devices/pending", data=_wizard_form(wizard))
    assert response.status_code == 422
    assert "No network profile is saved yet" in _error(_text(response), "network_profile")


def test_a_qr_code_from_a_profile_carries_its_network_and_says_so(wizard, db):
    profile = _profile()

    response = wizard.post("/admin/devices/pending",
                           data=_wizard_form(wizard, network_profile=str(profile.id)))

    assert response.status_code == 303, _text(response)
    qr = db.session.scalar(sa.select(QrCode))
    assert (qr.network_profile_id, qr.network_profile_version) == (profile.id, 1)
    payload = json.loads(decode_qr(wizard.get(
        f"/admin/qr-codes/{qr.public_id}/qr-code.png").data))
    assert payload["android.app.extra.PROVISIONING_WIFI_SSID"] == "School"
    assert payload["android.app.extra.PROVISIONING_WIFI_PASSWORD"] == SECRET
    assert payload["android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE"] == "WPA"
    assert not any("PROXY" in key or "EAP" in key for key in payload)
    review = _text(wizard.get(response.location))
    fact = re.search(r'<dd id="qr-network-profile">(.*?)</dd>', review, re.S).group(1)
    assert re.sub(r"<[^>]+>", "", fact) == "School Wi-Fi (version 1)"
    assert 'id="qr-profile-changed"' not in review
    assert SECRET not in review


def test_editing_the_profile_afterwards_changes_no_payload_and_marks_the_qr(wizard, db):
    profile = _profile()
    wizard.post("/admin/devices/pending",
                data=_wizard_form(wizard, network_profile=str(profile.id)))
    qr = db.session.scalar(sa.select(QrCode))
    before = wizard.get(f"/admin/qr-codes/{qr.public_id}/qr-code.png").data
    url = f"{LIST}/{profile.id}"

    assert _post(wizard, url, url, **_form(wifi_ssid="School-New",
                                           wifi_password="another-secret")).status_code == 303

    after = wizard.get(f"/admin/qr-codes/{qr.public_id}/qr-code.png").data
    assert decode_qr(after) == decode_qr(before)
    assert "School-New" not in decode_qr(after)
    page = _text(wizard.get(f"/admin/qr-codes/{qr.public_id}"))
    note = re.search(r'<p class="note" id="qr-profile-changed"[^>]*>(.*?)</p>', page, re.S)
    text = re.sub(r"<[^>]+>", "", note.group(1))
    assert "Made from an older version of the network profile School Wi-Fi (1, now 2)" in text
    assert "keeps the network it was made with" in text
    assert "Create a new QR code to use the new version." in text


@pytest.mark.parametrize("chosen", ["", "99999", "abc", "99999999999999999999999", "-1"])
def test_an_unknown_profile_is_refused_beside_the_select(wizard, db, chosen):
    _profile()

    response = wizard.post("/admin/devices/pending",
                           data=_wizard_form(wizard, network_profile=chosen))

    assert response.status_code == 422
    page = _text(response)
    assert "saved network profiles" in _error(page, "network_profile")
    for field in ("wifi_ssid", "wifi_identity", "proxy_host", "wifi_password"):
        assert _error(page, field) == "", field  # the hidden Wi-Fi fields are not read
    assert db.session.scalar(sa.select(sa.func.count()).select_from(QrCode)) == 0


def test_a_profile_deleted_while_the_wizard_was_open_is_refused_htmx(wizard, db):
    profile = _profile()
    data = _wizard_form(wizard, network_profile=str(profile.id))
    network_profiles.delete(profile, actor="another admin")

    response = wizard.post("/admin/devices/pending", data=data, headers={"HX-Request": "true"})

    assert response.status_code == 422
    body = _text(response)
    assert 'id="network_profile-error" hx-swap-oob="true">Choose one of the saved network' in body


def test_the_live_qr_version_sizes_the_profiles_network(wizard, db):
    long_ssid = _profile("Long", wifi_ssid="S" * 32, wifi_password="p" * 63)
    short = _profile("Short", wifi_ssid="S", wifi_password="p" * 8)

    def size(profile):
        html = wizard.get("/admin/devices/pending/new/qr-version", query_string={
            "option": "ssp", "lang": "en", "network": "profile",
            "network_profile": profile.id}).get_data(as_text=True)
        return int(re.search(r"\(([\d,]+) bytes\)", html).group(1).replace(",", ""))

    assert size(long_ssid) - size(short) == 31 + 55


def test_regenerate_keeps_the_profile_and_its_version(wizard, db, make_qr_code):
    from portal.provisioning.regenerate import regenerate_qr_code
    profile = _profile()
    qr = make_qr_code("ssp", network_profile_id=profile.id)
    network_profiles.save(ProfileValues(name="School Wi-Fi", network="wifi", wifi_ssid="New",
                                        wifi_security="WPA", wifi_password=""),
                          actor="setup", profile=profile)

    new = regenerate_qr_code(qr, regenerated_by=wizard.admin, server_url="https://portal.test")

    assert (new.network_profile_id, new.network_profile_version) == (profile.id, 1)
    assert json.loads(new.payload_text())["android.app.extra.PROVISIONING_WIFI_SSID"] == "School"
