"""What every test app would make again from the same sources: kept once per test process.

The suite makes an app for almost every test (create_app), and each app would compile its
URL rules and its templates afresh: Werkzeug builds two small Python functions from an AST for
every rule (Rule._compile_builder), Jinja compiles every template the test renders. Both are the
same for every app made from this code, so the test apps share them. What they share is what
Werkzeug and Jinja make (Jinja's own bytecode-cache interface, keyed by template name and a
checksum of its source), so URLs and pages come out exactly as in production, where one app per
process makes each once anyway.
"""
from jinja2 import BytecodeCache
from werkzeug.routing import Rule


class BuilderCachingRule(Rule):
    _builders: dict = {}

    def _compile_builder(self, append_unknown: bool = True):
        # The builder reads the rule from its `self` argument: one function serves every app.
        try:
            key = (self.rule, tuple(self._trace), tuple(sorted((self.defaults or {}).items())),
                   append_unknown)
            builder = self._builders.get(key)
        except TypeError:  # a default that cannot be a key: made afresh, as Werkzeug does
            return super()._compile_builder(append_unknown)
        if builder is None:
            builder = self._builders[key] = super()._compile_builder(append_unknown)
        return builder


class MemoryBytecodeCache(BytecodeCache):
    """Compiled templates kept in this process (a bucket's key names the template and the
    checksum of its source: an edited template compiles again)."""

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()

    def clear(self) -> None:
        self._code.clear()


def share_between_apps(flask_class) -> None:
    flask_class.url_rule_class = BuilderCachingRule
    flask_class.jinja_options = {**flask_class.jinja_options,
                                 "bytecode_cache": MemoryBytecodeCache()}
