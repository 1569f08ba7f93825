// Knowledge base: upload (several files, drag and drop, progress, live status), list with
// filters, document detail (version, re-index, delete) and a hybrid search with scores.
import { api, upload } from "./api.js";
import { announce, field, h, replace, when } from "./dom.js";

const ACCEPT = ".pdf,.docx,.html,.htm,.md,.markdown,.txt";

function statusBadge(doc) {
  return h("span", { class: `badge status-${doc.status}`, dataset: { status: doc.status } }, doc.status);
}

export async function render(main, route) {
  const closed = new AbortController();
  const files = h("input", { type: "file", multiple: true, accept: ACCEPT, name: "files" });
  const collection = h("input", { type: "text", name: "collection", maxlength: 100 });
  const uploads = h("ul", { class: "uploads", "aria-live": "polite" });
  const drop = h(
    "div",
    { class: "dropzone", tabindex: "0", role: "button", "aria-label": "Drop files here or press Enter to choose files" },
    "Drop files here, or press Enter to choose them (PDF, DOCX, HTML, Markdown, text)",
  );
  const statusFilter = h("select", { name: "status" }, ["", "queued", "processing", "ready", "failed"].map((s) => h("option", { value: s }, s || "any")));
  const tagFilter = h("input", { type: "text", name: "tag" });
  const table = h("tbody");
  const query = h("input", { type: "search", name: "q", required: true });
  const mode = h("select", { name: "mode" }, ["hybrid", "dense", "sparse"].map((m) => h("option", { value: m }, m)));
  const results = h("ol", { class: "results", "aria-live": "polite" });
  const detail = h("section", { class: "detail", "aria-label": "Document" });

  // Documents still in the pipeline, watched by one poller that backs off (a list call per
  // round, not one call per document, to stay well inside the per-user rate limit).
  const watched = new Map();
  let polling = false;
  const show = (doc, row) =>
    replace(row, h("strong", {}, doc.filename), " ", statusBadge(doc), doc.error ? h("span", { class: "error" }, ` ${doc.error}`) : null);
  const poll = async () => {
    if (polling) return;
    polling = true;
    let delay = 500;
    while (watched.size && !closed.signal.aborted) {
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(5000, delay * 1.5);
      let page;
      try {
        page = await api("kb/documents", { query: { limit: 100 } });
      } catch {
        continue;
      }
      for (const doc of page.items) {
        const row = watched.get(doc.id);
        if (!row) continue;
        show(doc, row);
        if (doc.status === "ready" || doc.status === "failed") {
          watched.delete(doc.id);
          announce(`${doc.filename}: ${doc.status}${doc.error ? ` (${doc.error})` : ""}`, doc.status === "failed" ? "error" : "info");
          loadList();
        }
      }
    }
    polling = false;
  };
  const watch = (doc, row) => {
    show(doc, row);
    if (doc.status === "queued" || doc.status === "processing") {
      watched.set(doc.id, row);
      poll();
    } else {
      loadList();
    }
  };

  const send = (list) => {
    for (const file of list) {
      const progress = h("progress", { max: 1, value: 0, "aria-label": `Uploading ${file.name}` });
      const row = h("li", { dataset: { filename: file.name } }, h("strong", {}, file.name), " ", progress);
      uploads.prepend(row);
      const form = new FormData();
      form.append("file", file);
      if (collection.value.trim()) form.append("collection", collection.value.trim());
      upload("kb/documents", form, (p) => (progress.value = p))
        .then((doc) => watch(doc, row))
        .catch((e) => replace(row, h("strong", {}, file.name), " ", h("span", { class: "error" }, `failed: ${e.message}`)));
    }
  };
  files.addEventListener("change", () => {
    send([...files.files]);
    files.value = "";
  });
  drop.addEventListener("click", () => files.click());
  drop.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), files.click()));
  drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    send([...e.dataTransfer.files]);
  });

  async function showDetail(id, page) {
    const doc = await api(`kb/documents/${id}`);
    replace(
      detail,
      h("h2", {}, doc.title),
      page ? h("p", { class: "notice" }, `Cited at page ${page}.`) : null,
      h(
        "dl",
        {},
        [["File", doc.filename], ["Kind", doc.kind], ["Status", doc.status], ["Version", doc.version], ["Chunks", doc.chunk_count], ["Pages", doc.page_count ?? "–"], ["Collection", doc.collection || "–"], ["Tags", doc.tags.join(", ") || "–"], ["Added", when(doc.created_at)], ["Processed", when(doc.processed_at)]].map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]),
      ),
      doc.error ? h("p", { class: "error" }, doc.error) : null,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", onclick: async () => { await api(`kb/documents/${id}/reindex`, { method: "POST" }); announce("Re-indexing."); loadList(); } }, "Re-index"),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!confirm(`Delete ${doc.title}?`)) return;
          await api(`kb/documents/${id}`, { method: "DELETE" });
          replace(detail);
          announce("Document deleted.");
          loadList();
        } }, "Delete"),
      ),
    );
    detail.scrollIntoView();
  }

  async function loadList() {
    const page = await api("kb/documents", { query: { limit: 100, status: statusFilter.value, tag: tagFilter.value.trim() } });
    replace(
      table,
      page.items.length ? null : h("tr", {}, h("td", { colspan: 5, class: "hint" }, "No documents.")),
      page.items.map((doc) =>
        h(
          "tr",
          { dataset: { documentId: doc.id } },
          h("td", {}, h("a", { href: `#/kb?doc=${doc.id}` }, doc.title)),
          h("td", {}, statusBadge(doc), doc.error ? h("small", { class: "error" }, ` ${doc.error}`) : null),
          h("td", {}, doc.chunk_count),
          h("td", {}, doc.collection || ""),
          h("td", {}, when(doc.updated_at)),
        ),
      ),
    );
  }

  async function search(event) {
    event.preventDefault();
    const found = await api("kb/search", { method: "POST", json: { query: query.value, mode: mode.value, top_k: 10 } });
    replace(
      results,
      found.results.length ? null : h("li", { class: "hint" }, "Nothing matched."),
      found.results.map((hit) =>
        h(
          "li",
          { class: "hit" },
          h("a", { href: `#/kb?doc=${hit.document_id}${hit.page ? `&page=${hit.page}` : ""}` }, hit.title, hit.page ? `, page ${hit.page}` : ""),
          " ",
          h("span", { class: "score", title: "Relevance score" }, `score ${hit.score.toFixed(3)}`),
          h("blockquote", {}, hit.text.length > 400 ? `${hit.text.slice(0, 400)}…` : hit.text),
        ),
      ),
    );
  }

  main.append(
    h("h1", {}, "Knowledge base"),
    h(
      "section",
      { class: "card", "aria-labelledby": "upload-h" },
      h("h2", { id: "upload-h" }, "Upload"),
      drop,
      field("Choose files", files),
      field("Collection (optional)", collection),
      uploads,
    ),
    detail,
    h(
      "section",
      { class: "card", "aria-labelledby": "search-h" },
      h("h2", { id: "search-h" }, "Search"),
      h("form", { class: "inline", onsubmit: search, role: "search" }, field("Search the knowledge base", query), field("Mode", mode), h("button", { type: "submit", class: "primary" }, "Search")),
      results,
    ),
    h(
      "section",
      { "aria-labelledby": "docs-h" },
      h("h2", { id: "docs-h" }, "Documents"),
      h("form", { class: "inline", onsubmit: (e) => (e.preventDefault(), loadList()) }, field("Status", statusFilter), field("Tag", tagFilter), h("button", { type: "submit" }, "Filter")),
      h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["Title", "Status", "Chunks", "Collection", "Updated"].map((c) => h("th", { scope: "col" }, c)))), table)),
    ),
  );
  await loadList();
  const doc = route.query.get("doc");
  if (doc) await showDetail(doc, route.query.get("page"));
  return () => closed.abort();
}
