"""The reserved words of docs/language.md, by role: one list for the highlighters and for
the importer (which quotes a label that is one of them)."""

DECLARATIONS = ("network", "block", "extern", "const", "var", "unit", "init", "input", "aux", "outputs")
CONTROL = ("if", "elif", "else", "then", "for", "in", "repeat", "as", "at", "from")
GROUPS = ("concat", "add", "mul")
CONSTANTS = ("true", "false", "none")
WORD_OPERATORS = ("and", "or", "not")
KEYWORDS = ("import", *DECLARATIONS, *CONTROL, *GROUPS, *CONSTANTS, *WORD_OPERATORS)
