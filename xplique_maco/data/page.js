// The helpers both pages' scripts share, the atlas page (page.html) and the lens page (lens.html):
// `page_html` writes them at the start of each page's script.
const $ = (id) => document.getElementById(id);
const url = (path) => path.split("/").map(encodeURIComponent).join("/");
const number = (value) => (value === null || value === undefined ? "n/a"
  : Math.abs(value) >= 1000 || (value !== 0 && Math.abs(value) < 0.01) ? value.toExponential(2)
  : value.toFixed(Math.abs(value) >= 100 ? 1 : 2));
const text = (tag, className, content) => {
  const element = document.createElement(tag);
  if (className) element.className = className;
  element.textContent = content;
  return element;
};

function row(table, key, value) {
  const line = document.createElement("tr");
  line.append(text("th", "", key), text("td", "", value));
  table.appendChild(line);
}

// Whether a tile (a unit, a class) matches the search: its index exactly, or its label in part.
function matches(entry, query) {
  if (!query) return true;
  if (/^\d+$/.test(query) && String(entry.index) === query) return true;
  return entry.search.includes(query);
}
