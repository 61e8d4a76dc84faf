"""Tools around the language: the formatter and the Pygments lexer."""
