"""The error of a settings page that cannot be saved."""


class SettingsError(ValueError):
    """Settings that cannot be saved; .errors maps each form field to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors
