"""The vendor-neutral archive backend, ``dir:PATH`` (format: ``docs/archive-format.md``).

Only the backend class is imported here; pyarrow is imported when a reader
or writer is first made, so registering/listing backends stays cheap.
"""
from trackbridge.backends.archive.backend import ArchiveBackend

__all__ = ["ArchiveBackend"]
