"""Localizations offered in the wizard: English, de-CH and it built in, plus custom tags."""
import unicodedata

import sqlalchemy as sa

from portal.android.payload import PayloadError, android_locale
from portal.audit.log import record
from portal.database import db, read_once
from portal.settings.errors import SettingsError
from portal.settings.models import Localization

MAX_NAME_LENGTH = 64


class LocalizationError(SettingsError):
    """A localization cannot be added or deleted; .errors names the field ("tag", "name")."""


def all_localizations() -> list[Localization]:
    """Built-in localizations first (in the order they were seeded), then custom ones by tag."""
    return db.session.scalars(sa.select(Localization).order_by(
        Localization.builtin.desc(), sa.case((Localization.builtin, Localization.id)),
        Localization.tag)).all()


@read_once
def find(tag: str) -> Localization | None:
    """The localization with this tag, compared without regard to case. A tag with a control
    character names none and never reaches a query (a NUL fails PostgreSQL's)."""
    tag = (tag or "").strip()
    if any(unicodedata.category(char) == "Cc" for char in tag):
        return None
    return db.session.scalar(sa.select(Localization).where(
        sa.func.lower(Localization.tag) == tag.lower()))


def is_known(tag: str) -> bool:
    return find(tag) is not None


def canonical_tag(tag: str) -> str:
    """The tag as BCP-47 writes it ("fr-ch" → "fr-CH"); raises LocalizationError if ill-formed."""
    try:
        return android_locale((tag or "").strip()).replace("_", "-")
    except PayloadError as error:
        raise LocalizationError({"tag": error.errors["lang"]}) from None


def add_localization(tag: str, name: str, *, actor: str) -> Localization:
    """Add a custom localization and commit.

    Raises LocalizationError, with nothing written, for an ill-formed or known tag or a bad name.
    """
    tag, name = canonical_tag(tag), (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH \
            or any(unicodedata.category(char) == "Cc" for char in name):
        raise LocalizationError({"name": f"Name must be 1 to {MAX_NAME_LENGTH} characters "
                                                 "without line breaks."})
    if is_known(tag):
        raise LocalizationError({"tag": f'The localization "{tag}" exists already.'})
    localization = Localization(tag=tag, name=name, builtin=False)
    db.session.add(localization)
    record("settings.localization.add", actor_type="admin", actor=actor, target=tag, name=name)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise LocalizationError({"tag": f'The localization "{tag}" exists already.'}) from None
    return localization


def delete_localization(tag: str, *, actor: str) -> None:
    """Delete a custom localization and commit; QR codes made with it keep their tag.

    Raises LocalizationError for a built-in or unknown tag, with nothing written.
    """
    localization = find(tag)
    if localization is None:
        raise LocalizationError({"tag": f'There is no localization "{tag}" (any more).'})
    if localization.builtin:
        raise LocalizationError({"tag": f'"{localization.tag}" is built in and cannot be '
                                        "deleted."})
    record("settings.localization.delete", actor_type="admin", actor=actor,
           target=localization.tag, name=localization.name)
    db.session.delete(localization)
    db.session.commit()
