"""The front end: source text -> parse tree -> IR -> one :class:`~.loader.Program` (imports resolved)."""
