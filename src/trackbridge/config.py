"""Configuration resolution, with the origin of every value recorded.

Precedence, highest first (documented in the README, tested in test_config.py):

1. an explicit argument (``tb.start_run(backend="mlflow")``, a CLI flag);
2. the process environment (``TRACKBRIDGE_BACKEND=...``);
3. ``.env`` in the working directory (or ``TRACKBRIDGE_DOTENV``), loaded with
   python-dotenv; it never overrides a variable already set, unless
   ``TRACKBRIDGE_DOTENV_OVERRIDE=true`` or ``load_config(dotenv_override=True)``;
4. ``trackbridge.toml`` in the working directory;
5. ``[tool.trackbridge]`` in ``pyproject.toml`` in the working directory;
6. built-in defaults.

``doctor`` prints each value with its origin, so "why is it logging there?"
always has an answer.  Secrets are never stored here: remotes name the env
var holding a secret (``api_key_env = "PROD_TOKEN"``), never the secret.
"""
from __future__ import annotations

import io
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackbridge.errors import ConfigError, DotenvError

#: what a ``.env`` key may be (shell variable names, plus ``.``).
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")

#: setting name -> (environment variable, default, help).  The single list of
#: what trackbridge reads; ``.env.example`` and the README table mirror it.
SETTINGS: dict[str, tuple[str, Any, str]] = {
    "backend": ("TRACKBRIDGE_BACKEND", "mlflow", "backend(s) the facade logs to; comma list = fan-out"),
    "project": ("TRACKBRIDGE_PROJECT", "Default", "experiment/project when start_run() names none"),
    "on_error": ("TRACKBRIDGE_ON_ERROR", "spool", "spool | raise: what the facade does when a backend fails"),
    "long_params": ("TRACKBRIDGE_LONG_PARAMS", "truncate", "truncate | raise: params longer than the backend allows"),
    "home": ("TRACKBRIDGE_HOME", ".trackbridge", "folder for the spool and the sync ledger"),
    "flush_interval": ("TRACKBRIDGE_FLUSH_INTERVAL", "1.0", "seconds between background flushes"),
    "max_queued": ("TRACKBRIDGE_MAX_QUEUED", "300000", "items held in memory per run and backend before spilling to the spool"),
    "journal_interval": ("TRACKBRIDGE_JOURNAL_INTERVAL", "0.05", "seconds within which every logged value is on local disk (what a SIGKILL can lose)"),
}


@dataclass(frozen=True)
class Setting:
    value: Any
    origin: str


@dataclass
class Config:
    """Resolved settings plus the named remotes of the config file."""

    settings: dict[str, Setting] = field(default_factory=dict)
    #: name -> options, from ``[remotes.NAME]`` in the config file.
    remotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    remotes_origin: str = ""
    #: variables that came from ``.env`` (for ``doctor``), and the file used.
    dotenv_keys: list[str] = field(default_factory=list)
    dotenv_path: Path | None = None

    def get(self, name: str) -> Any:
        return self.settings[name].value

    def origin(self, name: str) -> str:
        return self.settings[name].origin

    @property
    def home(self) -> Path:
        return Path(self.get("home")).expanduser()

    @property
    def backends(self) -> list[str]:
        names = [b.strip() for b in str(self.get("backend")).split(",") if b.strip()]
        if not names:
            raise ConfigError("no backend configured: set TRACKBRIDGE_BACKEND (e.g. 'mlflow')")
        return names


def load_dotenv_file(path: Path, override: bool = False) -> list[str]:
    """Load ``path`` into ``os.environ``; return the keys it set.

    A line that cannot be read is an error naming the file and the line, never a
    silent skip: python-dotenv alone only warns and drops it, and the run then goes
    to the default tracker instead of the one the line named.  Bytes that are not
    text (a binary file saved as ``.env``) are the same error, not a
    ``UnicodeDecodeError``.  Messages name the key, never a value (it may be a secret).
    """
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DotenvError(path, None,
                          f"cannot be read ({exc.strerror or exc}). Fix its permissions or remove it.") from None
    try:
        text = raw.decode("utf-8")
        bad_at = raw.find(b"\0")  # valid UTF-8 may still be a binary file
    except UnicodeDecodeError as exc:
        text, bad_at = "", exc.start
    if bad_at >= 0:
        raise DotenvError(
            path, None,
            f"is not a text file (byte {bad_at} is not UTF-8 text). A .env file holds KEY=value lines: "
            "fix it, or remove it (or point TRACKBRIDGE_DOTENV at the right file).",
        )
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            first = binding.original.string.split("\n", 1)[0]
            key = first.removeprefix("export ").partition("=")[0].strip()
            unclosed = first.count('"') % 2 or first.count("'") % 2
            if unclosed and "=" in first and _KEY.fullmatch(key):
                problem = f"the value of {key} has an unclosed quote"
            else:
                problem = "expected KEY=value" + (", and a quote is not closed" if unclosed else "")
            raise DotenvError(path, line, f"malformed line ({problem}). Fix it or comment it out with '#'.")
        if binding.key is not None and (binding.value is None or not _KEY.fullmatch(binding.key)):
            raise DotenvError(path, line, "malformed line (expected KEY=value). Fix or comment it out with '#'.")
    values = dotenv_values(stream=io.StringIO(text), interpolate=True)
    loaded = []
    for key, value in values.items():
        if value is None:
            continue
        if override or key not in os.environ:
            os.environ[key] = value
            loaded.append(key)
    return loaded


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's table; any way it cannot be read is one ConfigError naming it."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}. Fix it (the README shows an example).") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (not UTF-8). Fix it or remove it.") from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot be read ({exc.strerror or exc}). Fix its permissions or remove it.") from None


def load_file_config(cwd: Path) -> tuple[dict[str, Any], str]:
    """Settings table and its origin: ``trackbridge.toml`` wins over ``pyproject.toml``."""
    own = cwd / "trackbridge.toml"
    if own.is_file():
        return _read_toml(own), str(own.name)
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("trackbridge")
        if table is not None:
            return table, "pyproject.toml [tool.trackbridge]"
    return {}, ""


def load_config(
    overrides: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
    dotenv_override: bool | None = None,
    dotenv: bool = True,
) -> Config:
    """Resolve every setting; see the module docstring for precedence.  ``dotenv=False``
    leaves ``.env`` out (the facade's fallback when it cannot be read)."""
    cwd = Path(cwd or os.getcwd())
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - set(SETTINGS)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(SETTINGS)}")

    dotenv_path = Path(os.environ.get("TRACKBRIDGE_DOTENV", cwd / ".env"))
    if dotenv_override is None:
        dotenv_override = os.environ.get("TRACKBRIDGE_DOTENV_OVERRIDE", "").lower() in ("1", "true", "yes")
    dotenv_keys: list[str] = []
    if dotenv and dotenv_path.is_file():
        dotenv_keys = load_dotenv_file(dotenv_path, override=dotenv_override)

    table, file_origin = load_file_config(cwd)
    remotes = table.pop("remotes", {}) if isinstance(table.get("remotes"), dict) else {}
    bad = set(table) - set(SETTINGS)
    if bad:
        raise ConfigError(f"{file_origin}: unknown key(s) {', '.join(sorted(bad))}; known: {', '.join(SETTINGS)}")

    settings: dict[str, Setting] = {}
    for name, (env, default, _help) in SETTINGS.items():
        if name in overrides:
            settings[name] = Setting(overrides[name], "argument")
        elif env in os.environ and env in dotenv_keys:
            settings[name] = Setting(os.environ[env], f".env {env}")
        elif env in os.environ:
            settings[name] = Setting(os.environ[env], f"env {env}")
        elif name in table:
            settings[name] = Setting(table[name], file_origin)
        else:
            settings[name] = Setting(default, "default")
    for name, options in remotes.items():
        if not isinstance(options, dict) or "backend" not in options:
            raise ConfigError(f"{file_origin}: [remotes.{name}] needs a 'backend = \"...\"' line")
    return Config(settings, remotes, file_origin, dotenv_keys, dotenv_path if dotenv_keys else None)
