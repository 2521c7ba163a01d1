"""Account failures, each naming the field it is about."""
from portal.errors import DomainError


class AccountError(DomainError):
    """An account that cannot be created as asked; .errors maps the field to its message."""
