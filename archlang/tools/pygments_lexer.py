"""A Pygments lexer for ``.arch`` specs (alias ``arch``), registered through the
``pygments.lexers`` entry point, so ``pygmentize -l arch``, Sphinx, MkDocs and LaTeX
``minted`` (``\\begin{minted}{arch}``) highlight specs once archlang is installed.

Names are recognised by their place, not from a list of ops, so new ops, units and blocks
highlight without a change here: a name before ``(`` is a call, a name before ``:`` a
label, the name after ``network`` / ``block`` / ``extern`` a definition. Only this module imports
Pygments; the compiler never does.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from archlang.frontend.keywords import CONSTANTS, CONTROL, DECLARATIONS, GROUPS, WORD_OPERATORS

TYPES = ("int", "float", "bool", "str")
FUNCTIONS = ("range", "len", "min", "max", "int", "float", "str", "abs")

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


class ArchLexer(RegexLexer):
    """archlang network specs."""

    name = "archlang"
    aliases = ["arch", "archlang"]
    filenames = ["*.arch"]
    mimetypes = ["text/x-archlang"]
    url = "https://github.com/archlang/archlang"

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            (r'"', String.Double, "string"),
            (rf"(network|block|extern)(\s+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (r"(import)\b", Keyword.Namespace),
            (rf"(aux)(\s+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Label)),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(WORD_OPERATORS, suffix=r"\b"), Operator.Word),
            (words(DECLARATIONS, suffix=r"\b"), Keyword.Declaration),
            (words(CONTROL + GROUPS, suffix=r"\b"), Keyword),
            (words(FUNCTIONS, suffix=r"(?=\s*\()"), Name.Builtin),
            (rf"(:)(\s*)({words(TYPES).get()})\b", bygroups(Punctuation, Whitespace, Keyword.Type)),
            (rf"{_NAME}(?=\s*\()", Name.Function),
            (rf"{_NAME}(?=\s*:)", Name.Label),
            (_NAME, Name),
            (r"[0-9]+(?:x[0-9]+)+(?![A-Za-z0-9_])", Number.Integer),  # dimensions: 3x224x224
            # a dotted path's step (`from fpn.layer_blocks.0`), not a float `.0`
            (r'(?<=[A-Za-z0-9_"])(\.)([0-9]+)', bygroups(Punctuation, Number.Integer)),
            (r"[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+", Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"\*\*|//|==|!=|<=|>=|[-+*/%<>=]", Operator),
            (r"[(){}\[\],;:.]", Punctuation),
        ],
        "string": [
            (r"\\[^\n]", String.Escape),
            (r"\{[^{}\"\n]*\}", String.Interpol),  # a label template's hole: "Mixed_{i}"
            (r'[^"\\{\n]+', String.Double),
            (r"\{", String.Double),
            (r'"', String.Double, "#pop"),
        ],
    }
