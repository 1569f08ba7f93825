// Knowledge base: upload (several files, drag and drop, progress, live status), list with
// filters, shared collections, document detail (chunks, version, re-index, delete) and a hybrid
// search with scores.
import { api, ApiError, upload } from "./api.js";
import { announce, field, h, replace, when } from "./dom.js";
import { collectionsSection } from "./kb_collections.js";

const ACCEPT = ".pdf,.docx,.html,.htm,.md,.markdown,.txt";

function statusBadge(doc) {
  return h("span", { class: `badge status-${doc.status}`, dataset: { status: doc.status } }, doc.status);
}

export async function render(main, route) {
  const closed = new AbortController();
  const files = h("input", { type: "file", multiple: true, accept: ACCEPT, name: "files" });
  const collection = h("input", { type: "text", name: "collection", maxlength: 100 });
  const labelField = field("Label (optional)", collection, "A label of your own, to filter by.");
  // Where uploads go: your own documents, or a shared collection you may write to.
  const target = h("select", { name: "target" }, h("option", { value: "" }, "My documents"));
  target.addEventListener("change", () => (labelField.hidden = Boolean(target.value)));
  const collectionFilter = h("select", { name: "collection-filter" }, h("option", { value: "" }, "any"));
  const searchCollection = h("select", { name: "search-collection" }, h("option", { value: "" }, "all I may read"));
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
          if (doc.collection_id) collections.load();
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
      const into = target.value;
      if (!into && collection.value.trim()) form.append("collection", collection.value.trim());
      upload(into ? `kb/collections/${into}/documents` : "kb/documents", form, (p) => (progress.value = p))
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

  async function showChunks(id, list, more, offset) {
    const page = await api(`kb/documents/${id}/chunks`, { query: { limit: 50, offset } });
    for (const chunk of page.items) {
      const where = [chunk.page ? `page ${chunk.page}` : null, chunk.heading_path.join(" › ") || null].filter(Boolean).join(", ");
      list.append(
        h(
          "li",
          { class: "chunk", value: chunk.index + 1, dataset: { index: chunk.index } },
          where ? h("p", { class: "meta" }, where) : null,
          h("pre", {}, chunk.text),
        ),
      );
    }
    const shown = offset + page.items.length;
    more.hidden = shown >= page.total;
    more.onclick = () => showChunks(id, list, more, shown);
  }

  async function showDetail(id, page) {
    let doc;
    try {
      doc = await api(`kb/documents/${id}`);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404) throw e;
      // Neither yours nor in a collection you may read (or deleted): the API does not say which.
      replace(detail, h("p", { class: "notice" }, "There is no document here that you may open."));
      return;
    }
    // Your own documents, and those of the collections you may write to, are yours to change;
    // in a collection you only read, the API would answer 403.
    const changeable = !doc.collection_id || writable.has(doc.collection_id);
    const chunkList = h("ol", { class: "chunks", "aria-label": "Chunks" });
    const moreChunks = h("button", { type: "button", hidden: true }, "Show more chunks");
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
      changeable ? null : h("p", { class: "hint" }, `You may read the collection ${doc.collection} but not change its documents.`),
      h(
        "div",
        { class: "actions", hidden: !changeable },
        h("button", { type: "button", onclick: async () => { await api(`kb/documents/${id}/reindex`, { method: "POST" }); announce("Re-indexing."); loadList(); } }, "Re-index"),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!confirm(`Delete ${doc.title}?`)) return;
          await api(`kb/documents/${id}`, { method: "DELETE" });
          replace(detail);
          announce("Document deleted.");
          loadList();
        } }, "Delete"),
      ),
      h("h3", { id: "chunks-h" }, `Chunks (${doc.chunk_count})`),
      chunkList,
      moreChunks,
    );
    if (doc.chunk_count) await showChunks(id, chunkList, moreChunks, 0);
    else chunkList.replaceWith(h("p", { class: "hint" }, "No chunks indexed yet."));
    detail.scrollIntoView();
  }

  async function loadList() {
    const tag = tagFilter.value.trim().toLowerCase();
    let page;
    if (collectionFilter.value) {
      // A shared collection's documents, whoever uploaded them (its route has no tag filter).
      page = await api(`kb/collections/${collectionFilter.value}/documents`, { query: { limit: 100, status: statusFilter.value } });
      if (tag) page.items = page.items.filter((doc) => doc.tags.includes(tag));
    } else {
      page = await api("kb/documents", { query: { limit: 100, status: statusFilter.value, tag } });
    }
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
    const found = await api("kb/search", { method: "POST", json: { query: query.value, mode: mode.value, top_k: 10, filters: searchCollection.value ? { collection_id: searchCollection.value } : {} } });
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
          hit.collection ? h("span", { class: "badge collection" }, hit.collection) : null,
          h("blockquote", {}, hit.text.length > 400 ? `${hit.text.slice(0, 400)}…` : hit.text),
        ),
      ),
    );
  }

  // The collections feed the upload target (where you may write) and both filters.
  const options = (select, items, first) => {
    const chosen = select.value;
    replace(select, first, items.map((c) => h("option", { value: c.id, selected: c.id === chosen }, c.name)));
    if (select.value !== chosen) select.dispatchEvent(new Event("change"));
  };
  let writable = new Set();
  const collections = collectionsSection((items) => {
    writable = new Set(items.filter((c) => c.can_write).map((c) => c.id));
    options(target, items.filter((c) => c.can_write), h("option", { value: "" }, "My documents"));
    options(collectionFilter, items, h("option", { value: "" }, "any"));
    options(searchCollection, items, h("option", { value: "" }, "all I may read"));
  });

  main.append(
    h("h1", {}, "Knowledge base"),
    h(
      "section",
      { class: "card", "aria-labelledby": "upload-h" },
      h("h2", { id: "upload-h" }, "Upload"),
      drop,
      field("Choose files", files),
      field("Upload into", target),
      labelField,
      uploads,
    ),
    collections.element,
    detail,
    h(
      "section",
      { class: "card", "aria-labelledby": "search-h" },
      h("h2", { id: "search-h" }, "Search"),
      h("form", { class: "inline", onsubmit: search, role: "search" }, field("Search the knowledge base", query), field("Mode", mode), field("In collection", searchCollection), h("button", { type: "submit", class: "primary" }, "Search")),
      results,
    ),
    h(
      "section",
      { "aria-labelledby": "docs-h" },
      h("h2", { id: "docs-h" }, "Documents"),
      h("form", { class: "inline", onsubmit: (e) => (e.preventDefault(), loadList()) }, field("Status", statusFilter), field("Tag", tagFilter), field("Collection", collectionFilter), h("button", { type: "submit" }, "Filter")),
      h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["Title", "Status", "Chunks", "Collection", "Updated"].map((c) => h("th", { scope: "col" }, c)))), table)),
    ),
  );
  await Promise.all([loadList(), collections.load()]);
  const doc = route.query.get("doc");
  if (doc) await showDetail(doc, route.query.get("page"));
  return () => closed.abort();
}
