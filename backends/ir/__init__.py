"""``--emit ir``: the parsed IR as JSON."""
