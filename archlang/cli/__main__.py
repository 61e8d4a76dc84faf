"""``python -m archlang.cli``: the same as ``archc``."""

from archlang.cli.main import main

main()
