// Memory: what the assistant remembers about me; search, edit, delete, delete all, export.
import { api } from "./api.js";
import { announce, field, h, replace, when } from "./dom.js";

export async function render(main) {
  const list = h("ul", { class: "memories", "aria-live": "polite" });
  const q = h("input", { type: "search", name: "q" });
  const enabled = h("input", { type: "checkbox", name: "memory_enabled" });

  const item = (memory) => {
    const li = h("li", { class: "card memory", dataset: { memoryId: memory.id } });
    const show = () =>
      replace(
        li,
        h("p", {}, memory.content),
        h("p", { class: "meta" }, `${memory.kind} · importance ${memory.importance.toFixed(2)} · updated ${when(memory.updated_at)}`, memory.score != null ? ` · similarity ${memory.score.toFixed(3)}` : ""),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", onclick: edit }, "Edit"),
          h("button", { type: "button", class: "danger", onclick: async () => {
            await api(`memory/${memory.id}`, { method: "DELETE" });
            li.remove();
            announce("Memory deleted.");
          } }, "Delete"),
        ),
      );
    const edit = () => {
      const text = h("textarea", { rows: 3, maxlength: 2000 });
      text.value = memory.content;
      replace(
        li,
        h(
          "form",
          { onsubmit: async (e) => {
            e.preventDefault();
            memory = await api(`memory/${memory.id}`, { method: "PATCH", json: { content: text.value } });
            show();
            announce("Memory saved.");
          } },
          field("What the assistant remembers", text),
          h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save"), h("button", { type: "button", onclick: show }, "Cancel")),
        ),
      );
      text.focus();
    };
    show();
    return li;
  };

  const load = async () => {
    const items = q.value.trim()
      ? (await api("memory/search", { query: { q: q.value.trim(), limit: 50 } })).items
      : (await api("memory", { query: { limit: 100 } })).items;
    replace(list, items.length ? items.map(item) : h("li", { class: "hint" }, "Nothing remembered yet."));
  };

  const exportAll = async () => {
    const data = await api("memory/export");
    const link = h("a", { href: URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" })), download: "mai-memories.json" });
    document.body.append(link);
    link.click();
    link.remove();
  };

  main.append(
    h("h1", {}, "Memory"),
    h("p", { class: "hint" }, "What the assistant remembers about you across conversations."),
    h("div", { class: "field checkbox" }, enabled, h("label", { for: "memory-enabled" }, "Let the assistant remember and recall")),
    h("form", { class: "inline", role: "search", onsubmit: (e) => (e.preventDefault(), load()) }, field("Search memories", q), h("button", { type: "submit" }, "Search")),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: exportAll }, "Export (JSON)"),
      h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm("Delete everything the assistant remembers about you?")) return;
        const done = await api("memory", { method: "DELETE" });
        announce(`${done.deleted} memories deleted.`);
        load();
      } }, "Delete all"),
    ),
    list,
  );
  enabled.id = "memory-enabled";
  const settings = await api("memory/settings");
  enabled.checked = settings.memory_enabled;
  enabled.disabled = !settings.service_enabled;
  enabled.addEventListener("change", async () => {
    await api("memory/settings", { method: "PUT", json: { memory_enabled: enabled.checked } });
    announce(enabled.checked ? "Memory is on." : "Memory is off.");
  });
  await load();
}
