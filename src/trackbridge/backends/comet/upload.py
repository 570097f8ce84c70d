"""The `comet upload` command line and downsampling warnings (in progress)."""
