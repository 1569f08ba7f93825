// Shared knowledge-base collections: the ones you may read; admins create, share and delete them.
import { api, currentUser } from "./api.js";
import { announce, field, h, replace } from "./dom.js";

const VISIBILITY = [
  ["private", "private (members only)"],
  ["shared", "shared (everyone, or its members when it has any)"],
];

function visibilitySelect(value, label) {
  return h(
    "select",
    { name: "visibility", "aria-label": label },
    VISIBILITY.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
  );
}

function access(c) {
  return c.can_write ? "read and write" : "read";
}

/** One member row of the sharing editor: email, permission, remove. */
function memberRow(member = { email: "", permission: "read" }) {
  const row = h("li", { class: "member" });
  const emailInput = h("input", { type: "email", name: "member-email", value: member.email, required: true, "aria-label": "Member email" });
  const permission = h(
    "select",
    { name: "member-permission", "aria-label": "Member permission" },
    ["read", "write"].map((p) => h("option", { value: p, selected: p === member.permission }, p)),
  );
  const remove = h("button", { type: "button", class: "icon", "aria-label": "Remove member", onclick: () => row.remove() }, "✕");
  row.append(emailInput, permission, remove);
  return row;
}

/**
 * The collections section. `onChange(collections)` runs after every load, so the page can offer
 * them in its upload target and filters.
 */
export function collectionsSection(onChange) {
  const me = currentUser();
  const admin = Boolean(me && me.role === "admin");
  const list = h("ul", { class: "collections", "aria-live": "polite" });
  let collections = [];

  function sharingEditor(c) {
    const visibility = visibilitySelect(c.visibility, `Visibility of ${c.name}`);
    const members = h("ul", { class: "members" }, c.members.map(memberRow));
    const error = h("p", { class: "error", role: "alert" });
    const save = async (event) => {
      event.preventDefault();
      const body = {
        visibility: visibility.value,
        members: [...members.querySelectorAll("li.member")]
          .map((li) => ({ email: li.querySelector("input").value.trim(), permission: li.querySelector("select").value }))
          .filter((m) => m.email),
      };
      try {
        await api(`kb/collections/${c.id}`, { method: "PATCH", json: body });
      } catch (e) {
        error.textContent = e.message;
        return;
      }
      announce(`Sharing of ${c.name} saved.`);
      await load();
    };
    return h(
      "details",
      { class: "share" },
      h("summary", {}, "Share"),
      h(
        "form",
        { onsubmit: save, "aria-label": `Sharing of ${c.name}` },
        field("Visibility", visibility),
        h("p", { class: "hint" }, "Members (by email) and what they may do:"),
        members,
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", onclick: () => { const row = memberRow(); members.append(row); row.querySelector("input").focus(); } }, "Add member"),
          h("button", { type: "submit", class: "primary" }, "Save sharing"),
        ),
        error,
      ),
    );
  }

  function item(c) {
    const who = c.members.length
      ? c.members.map((m) => `${m.email} (${m.permission})`).join(", ")
      : c.visibility === "shared" ? "everyone" : "admins only";
    return h(
      "li",
      { class: "card collection", dataset: { collectionId: c.id, collection: c.name } },
      h("h3", {}, c.name),
      c.description ? h("p", {}, c.description) : null,
      h("p", { class: "meta" }, `${c.visibility} · ${c.document_count} document${c.document_count === 1 ? "" : "s"} · you may ${access(c)} · readers: ${who}`),
      admin
        ? h(
            "div",
            { class: "actions" },
            sharingEditor(c),
            h("button", { type: "button", class: "danger", onclick: async () => {
              if (!confirm(`Delete the collection ${c.name} with its ${c.document_count} documents?`)) return;
              await api(`kb/collections/${c.id}`, { method: "DELETE" });
              announce(`Collection ${c.name} deleted.`);
              await load();
            } }, `Delete ${c.name}`),
          )
        : null,
    );
  }

  async function load() {
    const page = await api("kb/collections", { query: { limit: 100 } });
    collections = page.items;
    replace(list, collections.length ? collections.map(item) : h("li", { class: "hint" }, "No collections you may read."));
    onChange(collections);
    return collections;
  }

  let create = null;
  if (admin) {
    const name = h("input", { type: "text", name: "name", required: true, maxlength: 100 });
    const description = h("input", { type: "text", name: "description", maxlength: 1000 });
    const visibility = visibilitySelect("private");
    const error = h("p", { class: "error", role: "alert" });
    create = h(
      "form",
      {
        class: "inline",
        "aria-label": "New collection",
        onsubmit: async (event) => {
          event.preventDefault();
          error.textContent = "";
          try {
            await api("kb/collections", { method: "POST", json: { name: name.value.trim(), visibility: visibility.value, description: description.value.trim() || null } });
          } catch (e) {
            error.textContent = e.message;
            return;
          }
          announce(`Collection ${name.value.trim()} created.`);
          name.value = description.value = "";
          await load();
        },
      },
      field("Collection name", name),
      field("Description (optional)", description),
      field("Who may read it", visibility),
      h("button", { type: "submit", class: "primary" }, "Create collection"),
      error,
    );
  }

  const element = h(
    "section",
    { class: "card", "aria-labelledby": "collections-h" },
    h("h2", { id: "collections-h" }, "Collections"),
    create,
    list,
  );
  return { element, load };
}
