"""The sync engine: plan, transfer and verify run history between two remotes.

It knows platforms only through :mod:`trackbridge.backends.base` (Reader and
Writer); it never imports a vendor SDK.  Entry points for the CLI and for
library users are in :mod:`trackbridge.sync.engine` and
:mod:`trackbridge.sync.check`.
"""
