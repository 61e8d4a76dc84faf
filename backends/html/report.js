"use strict";
(function () {
  const table = document.getElementById("costs");
  const svg = document.querySelector("#diagram svg");
  const rowsByNode = new Map();
  for (const row of table.querySelectorAll("tr.group")) rowsByNode.set(row.dataset.node, row);
  const nodesById = new Map();
  if (svg) {
    for (const node of svg.querySelectorAll("g.node")) {
      const title = node.querySelector("title");
      if (title) nodesById.set(title.textContent, node);
    }
  }

  function setExpanded(tbody, open) {
    const button = tbody.querySelector("button.toggle");
    if (!button) return;
    button.setAttribute("aria-expanded", String(open));
    for (const row of tbody.querySelectorAll("tr.layer")) row.hidden = !open;
  }
  table.addEventListener("click", (event) => {
    const button = event.target.closest("button.toggle");
    if (button) setExpanded(button.closest("tbody"), button.getAttribute("aria-expanded") !== "true");
  });
  document.getElementById("expand-all").addEventListener("click", () => {
    for (const tbody of table.tBodies) setExpanded(tbody, true);
  });
  document.getElementById("collapse-all").addEventListener("click", () => {
    for (const tbody of table.tBodies) setExpanded(tbody, false);
  });

  // Sorting moves whole blocks (a tbody with its layer rows); aux heads stay after the main path.
  for (const th of table.tHead.rows[0].cells) {
    th.querySelector("button.sort").addEventListener("click", () => {
      const key = "v" + th.dataset.key.charAt(0).toUpperCase() + th.dataset.key.slice(1);
      const numeric = th.classList.contains("num");
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      for (const other of table.tHead.rows[0].cells) other.setAttribute("aria-sort", "none");
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const value = (tbody) => {
        const raw = tbody.rows[0].dataset[key];
        return numeric ? (raw === undefined || raw === "" ? -1 : Number(raw)) : (raw || "");
      };
      const bodies = Array.from(table.tBodies);
      bodies.sort((a, b) => {
        const auxOrder = a.classList.contains("aux") - b.classList.contains("aux");
        if (auxOrder) return auxOrder;
        const x = value(a), y = value(b);
        const order = numeric ? x - y : String(x).localeCompare(String(y));
        return ascending ? order : -order;
      });
      for (const tbody of bodies) table.insertBefore(tbody, table.tFoot);
    });
  }

  // Hovering a diagram node highlights its table row, and the reverse; a click on a node
  // opens its block's layers and scrolls to them.
  function highlight(id, on) {
    const row = rowsByNode.get(id);
    const node = nodesById.get(id);
    if (row) row.classList.toggle("hl", on);
    if (node) node.classList.toggle("hl", on);
  }
  for (const [id, node] of nodesById) {
    node.addEventListener("mouseenter", () => highlight(id, true));
    node.addEventListener("mouseleave", () => highlight(id, false));
    node.addEventListener("click", () => {
      const row = rowsByNode.get(id);
      if (!row) return;
      setExpanded(row.parentElement, true);
      row.scrollIntoView({ block: "center", behavior: "smooth" });
    });
  }
  for (const [id, row] of rowsByNode) {
    row.addEventListener("mouseenter", () => highlight(id, true));
    row.addEventListener("mouseleave", () => highlight(id, false));
  }
})();
