"""The console's menu: its sections, their pages, and the section every screen belongs to."""
from dataclasses import dataclass

from flask import request

from portal.accounts.decorators import may_open
from portal.admin import bp


@dataclass(frozen=True)
class Page:
    endpoint: str
    title: str


@dataclass(frozen=True)
class Section:
    title: str
    endpoint: str  # where the section's own link goes
    # The first path segments under /admin of the section's screens: a route added under
    # one of them (a confirm page, a POST that re-renders) is in the section by its URL.
    screens: tuple[str, ...]
    pages: tuple[Page, ...]


# "users" is the wizard's user search (admin.search_users, /admin/users/search); Admin → Users
# lives under /admin/people.
DEVICES = Section("Devices", "admin.devices", ("devices", "qr-codes", "users", "batches"), (
    Page("admin.pending", "Pending"),
    Page("admin.devices", "Devices"),
))
ADMIN = Section("Admin", "admin.ssp_settings", ("settings", "people", "outbox", "webhooks",
                                                    "audit"), (
    Page("admin.ssp_settings", "Self Service Portal"),
    Page("admin.companion_settings", "Companion"),
    Page("admin.amapi_settings", "Android Management API"),
    Page("admin.preflight", "Preflight"),
    Page("admin.localizations", "Localizations"),
    Page("admin.network_profiles", "Network profiles"),
    Page("admin.zero_touch", "Zero-Touch / Knox"),
    Page("admin.sign_in_settings", "Sign-in methods"),
    Page("admin.mail_settings", "Mail"),
    Page("admin.outbox", "Outbox"),
    Page("admin.webhooks", "Webhooks"),
    Page("admin.audit_log", "Audit log"),
    Page("admin.users", "Users"),
    Page("admin.administrators", "Administrators"),
    Page("admin.licenses", "Licenses"),
    Page("admin.api_tokens_page", "API tokens"),
))
MENU = (DEVICES, ADMIN)


def section_for(path: str) -> Section:
    """The section a console URL belongs to; Devices, the console's home, for any other."""
    screen = path.removeprefix("/admin/").split("/", 1)[0]
    return next((section for section in MENU if screen in section.screens), DEVICES)


def visible_menu() -> tuple[Section, ...]:
    """The menu as the signed-in admin may use it: only the pages their role opens, each
    section linking to its first such page, and no section left empty."""
    menu = []
    for section in MENU:
        pages = tuple(page for page in section.pages if may_open(page.endpoint))
        if pages:
            endpoint = section.endpoint if may_open(section.endpoint) else pages[0].endpoint
            menu.append(Section(section.title, endpoint, section.screens, pages))
    return tuple(menu)


@bp.context_processor
def navigation() -> dict:
    return {"menu": visible_menu(), "active_section": section_for(request.path)}
