"""Defaults the command line shows before anything heavy is imported (a leaf module)."""

DEFAULT_MAX_NODES = 200_000  # primitive ops one spec may expand to: keeps `archc check` under ~1 GiB (docs/limits.md)
