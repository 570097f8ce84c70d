"""The names of the tags trackbridge itself writes, on the ground floor so that every
layer (backends, the facade, the sync engine) imports them instead of retyping them.

What each means and who writes it is told in :mod:`trackbridge.sync.provenance`, the
module that uses them to find and settle copies.
"""
from __future__ import annotations

SOURCE_PLATFORM = "trackbridge.source.platform"
SOURCE_RUN_ID = "trackbridge.source.run_id"
SOURCE_URL = "trackbridge.source.url"
MAPPING_VERSION_TAG = "trackbridge.mapping_version"
#: written last; value = the source fingerprint the run was completed from.
COMPLETE = "trackbridge.complete"
#: on destination model versions: the source version number, and that of the first
#: version in a chain of copies (A -> Comet's semver -> B still matches A's numbers).
SOURCE_VERSION = "trackbridge.source.version"
ORIGIN_VERSION = "trackbridge.origin.version"
#: the first run of a chain of copies (A -> dir: -> B).
ORIGIN_PLATFORM = "trackbridge.origin.platform"
ORIGIN_RUN_ID = "trackbridge.origin.run_id"
#: run fields a destination cannot set, kept as tags (ms as decimal strings for times).
SOURCE_START_TIME = "trackbridge.source.start_time"
SOURCE_END_TIME = "trackbridge.source.end_time"
SOURCE_USER = "trackbridge.source.user"
SOURCE_PARENT = "trackbridge.source.parent_run_id"
#: on a run an invocation created: that invocation's id.
CLAIM = "trackbridge.claim"
#: on a losing copy the destination cannot delete: the winner's id (never indexed).
DUPLICATE_OF = "trackbridge.duplicate_of"
#: on a copied logged model: the model it was copied from, and the first of its chain.
SOURCE_MODEL_ID = "trackbridge.source.model_id"
ORIGIN_MODEL_ID = "trackbridge.origin.model_id"
