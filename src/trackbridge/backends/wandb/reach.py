"""Whether a W&B host answers at all, asked in seconds.

Why its own module: the SDK waits up to 90 s for a host that never answers, so both
the live writer (before ``wandb.init``) and the cloud reader (before ``wandb.Api``) ask
this first, with a short timeout.
"""
from __future__ import annotations

from urllib.parse import urlparse


def reachable(base_url: str, timeout: float) -> str | None:
    """``None`` when ``base_url`` answers an HTTP request (any status) within ``timeout``
    seconds, else why not (a refused port, a DNS failure, a host that never answers)."""
    import http.client

    parsed = urlparse(base_url)
    host = parsed.hostname or ""
    conn_class = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(host, parsed.port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read(0)
        return None
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc or 'no answer'}"
    finally:
        conn.close()
