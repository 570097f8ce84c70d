"""Writing Comet offline archives (in progress)."""
