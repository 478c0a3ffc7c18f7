"""The errors of a bad setting, phrased for whoever made it: a Python user or the command line."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["ConfigError", "ConfigFieldError", "ConfigFieldTypeError"]


class ConfigError(ValueError):
    """A configuration that cannot be used: an unknown key, an unreadable file."""


class ConfigFieldError(ConfigError):
    """One field of a configuration holds a bad value.

    The message is a template in which ``{dim}`` names a setting (a config field or a function's argument) and
    ``{dim=1024}`` a value of it, so that the same error reads ``dim`` / ``dim=1024`` to a Python user and ``--dim`` /
    ``--dim 1024`` on the command line (:meth:`render`).

    Attributes:
        field (`str`): the field at fault.
        value: the value it was given.
    """

    def __init__(self, field_name: str, value: Any, template: str):
        self.field = field_name
        self.value = value
        self.template = template
        super().__init__(self.render())

    def render(
        self, name_of: Callable[[str], str] | None = None, setting_of: Callable[[str, str], str] | None = None
    ) -> str:
        """The message with field names written by ``name_of`` and settings by ``setting_of`` (Python by default)."""
        name_of = name_of or (lambda name: name)
        setting_of = setting_of or _python_setting

        def replace(match: re.Match) -> str:
            name, value = match.group(1), match.group(2)
            return name_of(name) if value is None else setting_of(name, value)

        return _PLACEHOLDER.sub(replace, self.template)


class ConfigFieldTypeError(ConfigFieldError, TypeError):
    """A field holds a value of the wrong type (also a ``TypeError``)."""


_PLACEHOLDER = re.compile(r"\{([a-z_]+)(?:=([^{}]*))?\}")


def _python_setting(name: str, value: str) -> str:
    return f"{name}={value}" if re.fullmatch(r"-?\d+|None|True|False", value) else f"{name}={value!r}"
