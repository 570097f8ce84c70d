"""The logging facade: ``trackbridge.start_run()`` and the machinery behind it.

Layout (one job per module):

* ``api`` — module-level functions and the stack of active runs;
* ``run`` — :class:`Run`, the object user code logs to;
* ``channel`` — one run at one backend: synchronous checks, then an in-memory queue;
* ``sanitise`` — fitting names and values to that backend's limits;
* ``worker`` — the background thread per backend that batches and sends;
* ``ops`` — the operations sent to a writer (the same for live sending and replay);
* ``spool`` — the durable on-disk log of what could not be sent, and ``replay``;
* ``registry`` — one worker per backend per process, and the ``atexit`` flush.

Nothing here imports a vendor SDK at import time.
"""
