"""Command-line options generated from :class:`gvendi.config.GVendiConfig`, and ``--config FILE`` for every command.

Each config field becomes a flag (``batch_size`` → ``--batch-size``) whose help is the field's help, so a new field
reaches every featurizing command at once. ``--config FILE`` (YAML or JSON) supplies any option of a command by its
name with underscores (``batch_size: 4``, ``limit: 100``); flags given on the command line override it. Unknown keys
and bad values fail with the key's name and the fix before any work starts (exit 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ..config import ConfigError, ConfigFieldError, GVendiConfig, check_keys, read_config_file

__all__ = [
    "CONFIG_HELP",
    "add_config_arguments",
    "config_from_args",
    "flag_of",
    "parse_with_config_file",
    "render_error",
]

#: library argument → command-line flag, where the flag is not ``--`` + the name with dashes
_FLAGS = {"config": "--data-config"}


def flag_of(name: str) -> str:
    """The flag of a setting an error names: a config field's flag, else ``--`` + the name with dashes."""
    if name in _FLAGS:
        return _FLAGS[name]
    if any(f.name == name for f in dataclasses.fields(GVendiConfig)):
        return GVendiConfig.flag(name)
    return "--" + name.replace("_", "-")


CONFIG_HELP = (
    "a YAML or JSON file of this command's settings, keyed by option name with underscores (e.g. `dim: 256`, "
    "`batch_size: 4`; a result's `config` record works as it is); flags given here override it."
)
#: set on the namespace: the file ``--config`` named, and the keys whose values came from it
_FILE, _FROM_FILE = "_config_file", "_config_keys"


def _kind(field: dataclasses.Field) -> Any:
    annotation = str(field.type)
    if annotation.startswith("bool"):
        return _boolean
    return int if annotation.startswith("int") else str


def _boolean(text: str) -> bool:
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(str(text).lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


_boolean.__name__ = "boolean"


class _DeprecatedFlag(argparse.Action):
    """An old spelling of a flag: stores into the new flag's destination and says which flag to use."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str = "", **kwargs: Any):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(
            f"{parser.prog}: note: {option_string} is deprecated and will be removed in gvendi 0.3; use {self.new}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_config_arguments(
    parser: argparse.ArgumentParser,
    *,
    title: str = "gradient features (gvendi.config.GVendiConfig)",
    fields: Iterable[str] | None = None,
    dest_prefix: str = "",
    suppress_defaults: bool = False,
    old_spellings: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
) -> None:
    """Add a flag for every :class:`GVendiConfig` field (or those in ``fields``), with the field's help and default.

    ``defaults`` are this command's own defaults where they differ from the field's (shown in the help).
    ``old_spellings`` the command used before (``--seed`` for ``--projection-seed``) keep working with a deprecation
    note. ``dest_prefix`` namespaces the destinations; ``suppress_defaults`` leaves unset flags out of the namespace.
    """
    old_spellings, own = set(old_spellings), dict(defaults or {})
    group = parser.add_argument_group(title)
    chosen = set(fields) if fields is not None else None
    for field in dataclasses.fields(GVendiConfig):
        if chosen is not None and field.name not in chosen:
            continue
        meta = field.metadata
        flag = GVendiConfig.flag(field.name)
        kind = _kind(field)
        options: dict[str, Any] = {
            "dest": dest_prefix + field.name,
            "type": kind,
            "default": argparse.SUPPRESS if suppress_defaults else own.get(field.name, field.default),
            "help": meta["help"] if field.name not in own else f"{meta['summary']} Default here: {own[field.name]!r}.",
            "metavar": field.name.upper(),
        }
        if meta["choices"]:
            options["choices"] = list(meta["choices"])
        if kind is _boolean:
            options["metavar"] = "{true,false}"
        if meta["choices"]:
            options["metavar"] = None
        group.add_argument(flag, **options)
        for old in meta["deprecated"]:
            if old in old_spellings and old not in parser._option_string_actions:
                group.add_argument(
                    old,
                    action=_DeprecatedFlag,
                    new=flag,
                    dest=options["dest"],
                    type=kind,
                    default=argparse.SUPPRESS,
                    help=f"deprecated spelling of {flag}.",
                    metavar=options["metavar"],
                )


def config_from_args(args: argparse.Namespace, *, dest_prefix: str = "", **overrides: Any) -> GVendiConfig:
    """The :class:`GVendiConfig` the parsed flags describe (fields without a flag keep their defaults)."""
    values = {
        field.name: getattr(args, dest_prefix + field.name)
        for field in dataclasses.fields(GVendiConfig)
        if hasattr(args, dest_prefix + field.name)
    }
    return GVendiConfig(**{**values, **overrides})


def render_error(exc: BaseException, args: argparse.Namespace | None) -> str:
    """The message of ``exc`` for the command line: a config field is named as its flag, or as the config file's key
    when its value came from ``--config FILE``."""
    if not isinstance(exc, ConfigFieldError):
        return str(exc)
    from_file = getattr(args, _FROM_FILE, set()) if args is not None else set()
    path = getattr(args, _FILE, None) if args is not None else None

    def name_of(name: str) -> str:
        return f"{name} (in {path})" if name in from_file else flag_of(name)

    def setting_of(name: str, value: str) -> str:
        if name in from_file:
            return f"{name}: {value}"
        return flag_of(name) if value == "True" else f"{flag_of(name)} {value}"

    return exc.render(name_of, setting_of)


def _config_path(argv: Sequence[str]) -> str | None:
    for i, token in enumerate(argv):
        if token == "--":
            return None
        if token == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith("--config="):
            return token.split("=", 1)[1]
    return None


def _convert(action: argparse.Action, key: str, value: Any, path: str) -> Any:
    """A file value as the option would have parsed it, or a ``ConfigError`` naming the key and what it takes."""
    where = f"config file {path!r}: {key}"
    if value is None:
        return None
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false (got {value!r}).")
        return value
    kind = action.type
    if isinstance(action, argparse._AppendAction):
        return [_convert_one(kind, action, where, item) for item in (value if isinstance(value, list) else [value])]
    return _convert_one(kind, action, where, value)


def _convert_one(kind: Any, action: argparse.Action, where: str, value: Any) -> Any:
    if kind is not None:
        if isinstance(value, str) or kind is _boolean:
            try:
                value = kind(value)
            except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
                raise ConfigError(
                    f"{where} must be {getattr(kind, '__name__', 'valid')} (got {value!r}: {err})."
                ) from None
        elif kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{where} must be an integer (got {value!r}).")
        elif kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{where} must be a number (got {value!r}).")
        elif kind is float:
            value = float(value)
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"{where} must be one of {list(action.choices)} (got {value!r}).")
    return value


def parse_with_config_file(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``, with the command's ``--config FILE`` (when given) as defaults that flags override.

    Raises:
        ConfigError: the file is unreadable, has an unknown key, or a value its option cannot take.
    """
    subparsers = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    command = next((token for token in argv if not token.startswith("-")), None)
    sub = subparsers.choices.get(command) if subparsers is not None and command else None
    path = _config_path(argv[argv.index(command) + 1 :]) if sub is not None else None
    if sub is None or path is None or not getattr(sub, "_gvendi_config_file", False):
        return parser.parse_args(argv)
    values = read_config_file(path)
    actions: dict[str, argparse.Action] = {}
    for action in sub._actions:  # the first action of a destination is its flag (old spellings come after it)
        if action.option_strings and action.dest not in ("help", "config_file"):
            actions.setdefault(action.dest, action)
    positional = [a.dest for a in sub._actions if not a.option_strings]
    misplaced = [key for key in values if key in positional]
    if misplaced:
        raise ConfigError(
            f"config file {path!r}: {misplaced} are positional arguments of `gvendi {command}`; give them on the "
            "command line and keep the file for options."
        )
    check_keys(values, set(actions), what=f"config file {path!r} (for `gvendi {command}`)")
    converted = {key: _convert(actions[key], key, value, path) for key, value in values.items()}
    for key in converted:
        for action in sub._actions:
            if action.dest == key:
                action.required = False  # supplied by the file
    sub.set_defaults(**converted)
    args = parser.parse_args(argv)
    setattr(args, _FILE, path)
    setattr(args, _FROM_FILE, {key for key, value in converted.items() if getattr(args, key, None) == value})
    return args
