"""Mail addresses that are not one address on one line, and what the refusal says: walked
through every address field of the console (tests/security/test_mail_addresses.py) and the
operator commands (tests/test_cli.py)."""

# (value, words of the message that refuses it)
LISTS_AND_LINES = [
    ("a@b.example\r\nBcc: x@y.example", "on one line"),
    ("a@b.example\nBcc: x@y.example", "on one line"),
    ("a@b.example, c@d.example", "one address only"),
    ("a@b.example;c@d.example", "one address only"),
    ("Ann <a@b.example>, Cy <c@d.example>", "one address only"),
    ("a\x00@b.example", "on one line"),
    ("a@b.example\x00", "on one line"),
    ("a" * 288 + "@b.example", "254 characters"),   # 300 characters
    ("a@b", "not a valid email address"),           # as users' addresses always were
    ("a b@c.example", "not a valid email address"),
]
# A name and angle brackets make sense only for the sender (the From header).
NAMED = [("<a@b.example>", "without a name"), ("Ann <a@b.example>", "without a name")]
