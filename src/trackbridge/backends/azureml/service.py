"""What Azure ML's tracking service takes, and how trackbridge records what it cannot:
one module the reader and the writer both read (so neither imports the other)."""
from __future__ import annotations

from collections.abc import Mapping

PLATFORM = "azureml"
SOURCE_TAG_PREFIX = "mlflow.source."
TAG_USER = "mlflow.user"
KEPT_USER = "trackbridge.source.user"
#: a version tag that keeps an alias the workspace's registry cannot hold natively.
ALIAS_TAG_PREFIX = "trackbridge.alias."
METRICS_PER_BATCH = 250
TAGS_PER_RUN = 50
TAG_VALUE_LENGTH = 1000
#: get_metric_history's ``max_results`` must be < 1000 on Azure.
HISTORY_PAGE = 999


def alias_tags(tags: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """(aliases recorded as tags, the other tags) of one model version."""
    aliases = [k[len(ALIAS_TAG_PREFIX):] for k in tags if k.startswith(ALIAS_TAG_PREFIX)]
    rest = {k: v for k, v in tags.items() if not k.startswith(ALIAS_TAG_PREFIX)}
    return aliases, rest
