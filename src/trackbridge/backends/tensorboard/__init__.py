"""``tensorboard:PATH``: TensorBoard event files, a read-only source (see ``docs/backends/tensorboard.md``)."""
