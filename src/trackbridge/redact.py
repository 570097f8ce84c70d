"""The one rule for hiding credentials in text that trackbridge shows.

Why one function: a URL reaches the screen through many doors (``doctor``, error
messages, ``ls`` titles, log lines, a remote's options), from many sources (the
environment, ``.env``, ``trackbridge.toml``).  Each door calls :func:`mask`, so a
password typed into ``MLFLOW_TRACKING_URI`` is hidden everywhere alike.

What is hidden: the password of ``scheme://user:password@host`` (the user stays, to
tell accounts apart), a ``scheme://token@host`` userinfo without a password (a token
used as user name), and the value of query parameters whose name says secret
(``?token=``, ``api_key=``, ``sig=``, ``password=``...).
"""
from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"

#: ``scheme://user:password@`` (password present) or ``scheme://userinfo@``.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][\w+.-]*://)(?P<user>[^/@\s:?#]*)(?P<password>:[^/@\s?#]*)?@")
#: ``?token=...`` / ``&api_key=...``: parameter names that carry a secret.
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;][\w.-]*(?:token|key|secret|password|passwd|pwd|sig|signature|credential|auth)[\w.-]*=)"
    r"(?P<value>[^&#\s'\"]+)",
    re.IGNORECASE,
)


def _userinfo(match: re.Match[str]) -> str:
    if match.group("password") is not None:
        return f"{match.group('scheme')}{match.group('user')}:{MASK}@"
    return f"{match.group('scheme')}{MASK}@"


def mask(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(_userinfo, text)
    return _QUERY_SECRET.sub(lambda m: m.group("name") + MASK, text)


def mask_all(value: Any) -> Any:
    """:func:`mask` applied to every string inside ``value`` (dicts, lists, tuples), for
    reports built from many sources before they are printed (``doctor --json``)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask_all(k): mask_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_all(v) for v in value)
    return value


class MaskingFilter(logging.Filter):
    """Masks every record of the ``trackbridge`` logger (installed by the package): a
    warning quoting a backend's error may quote its URL.  Costs one format per record,
    and trackbridge logs only warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
