"""``neptune-export:PATH``: neptune-exporter's parquet output, a read-only source
(see ``docs/backends/neptune-export.md``)."""
