"""The console's menu: each screen lights its section by its URL, and each menu page marks
itself as the current page, so a new route needs no template edit."""
import re

import pytest
from flask import render_template_string

from portal.admin.navigation import ADMIN, DEVICES, MENU, section_for
from tests.conftest import csrf_token_from, sign_in
from tests.security.conftest import known  # noqa: F401  (a fixture: real objects for the URLs)
from tests.security.conftest import url_for_rule

MENU_LINKS = [("Devices", "/admin/devices/", ["Pending", "Devices"]),
              ("Admin", "/admin/settings/self-service-portal",
               ["Self Service Portal", "Companion", "Android Management API", "Preflight",
                "Localizations", "Network profiles", "Zero-Touch / Knox", "Sign-in methods", "Mail", "Outbox",
                "Webhooks", "Audit log", "Users", "Administrators", "Licenses", "API tokens"])]


def nav(html: str) -> str:
    match = re.search(r'<nav class="mainnav" aria-label="Main">.*?</nav>', html, re.S)
    assert match, "no main navigation on the page"
    return match.group(0)


def active_sections(html: str) -> list[str]:
    return re.findall(r'<li class="active">\s*<a href="[^"]+">([^<]+)</a>', nav(html))


def current_pages(html: str) -> list[str]:
    return re.findall(r'<a href="[^"]+" aria-current="page">([^<]+)</a>', nav(html))


def test_the_menu_has_its_sections_and_pages_in_order(admin_client):
    html = nav(admin_client.get("/admin/devices/pending").get_data(as_text=True))

    sections = re.findall(r'<li class="(?:active)?">\s*<a href="([^"]+)">([^<]+)</a>\s*'
                          r'(?:<details class="subnav-fold"><summary>[^<]+</summary>)?'
                          r'<ul class="subnav">(.*?)</ul>', html, re.S)
    assert [(title, href, re.findall(r">([^<]+)</a>", pages))
            for href, title, pages in sections] == MENU_LINKS


@pytest.mark.parametrize("section", MENU, ids=lambda section: section.title)
def test_each_menu_page_is_the_current_page_in_its_section(app, admin_client, section):
    for page in section.pages:
        with app.test_request_context():
            url = app.url_for(page.endpoint)
        html = admin_client.get(url).get_data(as_text=True)

        assert active_sections(html) == [section.title], url
        assert current_pages(html) == [page.title], url


@pytest.mark.parametrize("endpoint, method, section", [
    ("admin.add_localization", "POST", "Admin"),          # a settings sub-route (422 page)
    ("admin.confirm_delete_localization", "GET", "Admin"),
    ("admin.confirm_delete_zero_touch_entry", "GET", "Admin"),
    ("admin.confirm_resend_message", "GET", "Admin"),     # under Outbox
    ("admin.send_test_mail", "POST", "Admin"),            # re-renders Mail
    ("admin.new_qr_code", "GET", "Devices"),              # the wizard
    ("admin.search_directory_users", "POST", "Devices"),  # the wizard's directory search
    ("admin.qr_code", "GET", "Devices"),
    ("admin.confirm_revoke_qr_code", "GET", "Devices"),
    ("admin.edit_user", "GET", "Admin"),                  # Admin → Users → a user
    ("admin.confirm_disable_administrator", "GET", "Admin"),
])
def test_a_screen_off_the_menu_lights_the_section_of_its_url(app, admin_client, known,
                                                             endpoint, method, section):
    url = url_for_rule(app, next(app.url_map.iter_rules(endpoint)), known)
    token = csrf_token_from(admin_client.get("/admin/devices/pending").get_data(as_text=True))

    response = admin_client.open(url, method=method, data={"csrf_token": token})

    assert response.status_code in (200, 422), response.status_code
    html = response.get_data(as_text=True)
    assert active_sections(html) == [section] and current_pages(html) == []


def test_a_route_added_under_settings_is_in_admin_without_a_template_edit(app, client,
                                                                          make_admin):
    def new_screen():
        return render_template_string('{% extends "admin/base.html" %}')

    # Routes must be added before the app serves its first request (the sign-in).
    app.add_url_rule("/admin/settings/new-screen", "admin.new_screen", new_screen)
    sign_in(client, make_admin().username)

    assert active_sections(client.get("/admin/settings/new-screen").get_data(as_text=True)) \
        == ["Admin"]


@pytest.mark.parametrize("path, section", [
    ("/admin/settings/localizations/fr-CA/delete", ADMIN), ("/admin/outbox/7/resend", ADMIN),
    ("/admin/audit", ADMIN), ("/admin/devices/pending/new/form", DEVICES),
    ("/admin/qr-codes/abc/print", DEVICES), ("/admin/", DEVICES), ("/admin/login", DEVICES),
    ("/admin/settingsx", DEVICES), ("/admin/people/users/3", ADMIN),
    ("/admin/users/search", DEVICES),
])
def test_section_for_a_path(path, section):
    assert section_for(path) == section
