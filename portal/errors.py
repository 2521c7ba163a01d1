"""One shape for the domain's refusals: each names the field it is about and the message."""
from collections.abc import Mapping

WHOLE = ""  # the key of a message about the request as a whole, not one field


class DomainError(ValueError):
    """A request the domain refuses; .errors maps each field (WHOLE: none) to its message.

    Every refusal that a person can correct derives from this class, so that every screen
    shows every message at once beside its field (portal.web.forms.show_errors) and the API
    and the commands print them the same way.
    """

    def __init__(self, errors: Mapping[str, str] | str, field: str = WHOLE):
        self.errors = dict(errors) if isinstance(errors, Mapping) else {field: errors}
        super().__init__(" ".join(self.errors.values()))

    @property
    def message(self) -> str:
        return str(self)
