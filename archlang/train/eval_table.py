"""``archc eval``'s terminal output: the headline figures, per-class accuracy and the
confusion matrix as tables that fit the terminal. Many classes are summarised (the worst
classes, the most frequent confusions); ``--format json`` and ``eval.json`` keep every number."""

from __future__ import annotations

from archlang.backends.report.formats import cell_len
from archlang.diagnostics import printable

# Above this many classes the per-class table shows only the worst ones.
MAX_CLASS_ROWS = 20
# Confusions listed when the matrix is too wide for the terminal.
MAX_CONFUSIONS = 10


def _clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` terminal columns (an ellipsis marks the cut)."""
    if cell_len(text) <= width:
        return text
    out = ""
    for ch in text:
        if cell_len(out + ch) > width - 1:
            break
        out += ch
    return out + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * (width - cell_len(text))


def eval_table(result: dict, width: int = 80) -> str:
    """The text ``archc eval`` prints for ``result`` (:func:`archlang.train.evaluate.evaluate`'s
    figures), no line wider than ``width`` columns."""
    width = max(width, 40)
    classes = [printable(str(c)) for c in result["classes"]]
    confusion = result["confusion"]
    counts = [sum(row) for row in confusion]
    accuracy = [result["per_class"][c] for c in result["classes"]]
    lines = [
        _clip(f"{printable(result['spec'])} with {printable(result['weights'])}", width),
        _clip(f"on the val/ split of {printable(result['data'])}: {result['samples']} images", width),
        "",
        f"top-1 {result['top1']:.4f}  top-5 {result['top5']:.4f}  loss {result['loss']:.4f}",
        "",
    ]
    index_w = len(str(len(classes) - 1))
    # per class: index, name, accuracy, images; the name takes what the numbers leave
    order = list(range(len(classes)))
    title = "per class"
    if len(classes) > MAX_CLASS_ROWS:
        order = sorted(order, key=lambda i: (accuracy[i], i))[:MAX_CLASS_ROWS]
        title = f"the {MAX_CLASS_ROWS} classes with the lowest accuracy (of {len(classes)})"
    count_w = max(len("images"), *(len(str(counts[i])) for i in order))
    fixed = 2 + index_w + 2 + 2 + len("accuracy") + 2 + count_w
    name_w = min(max(cell_len("class"), *(cell_len(classes[i]) for i in order)), max(8, width - fixed))
    lines.append(title + ":")
    lines.append(f"  {'#':>{index_w}}  {_pad('class', name_w)}  accuracy  {'images':>{count_w}}")
    for i in order:
        name = _pad(_clip(classes[i], name_w), name_w)
        lines.append(f"  {i:>{index_w}}  {name}  {accuracy[i]:8.4f}  {counts[i]:>{count_w}}")
    if len(order) < len(classes):
        lines.append(f"  … {len(classes) - len(order)} more classes in --format json")
    lines.append("")
    lines.extend(_confusion_lines(confusion, classes, width, index_w))
    return "\n".join(_clip(line, width) for line in lines) + "\n"


def _confusion_lines(confusion: list[list[int]], classes: list[str], width: int, index_w: int) -> list[str]:
    n = len(classes)
    cell_w = max(index_w, *(len(str(v)) for row in confusion for v in row))
    row_label = 2 + index_w + 2
    if row_label + n * (cell_w + 1) <= width:
        header = " " * row_label + " ".join(f"{j:>{cell_w}}" for j in range(n))
        lines = ["confusion matrix", "(rows: true class, columns: predicted)", header]
        for i, row in enumerate(confusion):
            lines.append(f"  {i:>{index_w}}  " + " ".join(f"{v:>{cell_w}}" for v in row))
        return lines
    pairs = sorted(
        ((confusion[i][j], i, j) for i in range(n) for j in range(n) if i != j and confusion[i][j]),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    lines = [f"most frequent confusions (the {n}×{n} matrix is in --format json):"]
    if not pairs:
        lines.append("  none: every image is classified correctly")
    shown = pairs[:MAX_CONFUSIONS]
    count_w = max([1, *(len(str(c)) for c, _, _ in shown)])
    for count, i, j in shown:
        text = f"  {count:>{count_w}}× {classes[i]} (#{i}) taken for {classes[j]} (#{j})"
        lines.append(_clip(text, width))
    return lines
