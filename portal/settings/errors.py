"""The error of a settings page that cannot be saved."""
from portal.errors import DomainError


class SettingsError(DomainError):
    """Settings that cannot be saved; .errors maps each field to its message."""
