// Admin: users (role, active, budget), usage and cost as charts, feedback with filters, API keys.
import { api, currentUser } from "./api.js";
import { announce, field, h, replace, when } from "./dom.js";

/** A horizontal bar chart as accessible HTML: one labelled bar per row, the value in text. */
function bars(title, rows, format = (v) => String(v)) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  return h(
    "figure",
    { class: "chart" },
    h("figcaption", {}, title),
    rows.length
      ? h(
          "ul",
          {},
          rows.map((r) =>
            h(
              "li",
              {},
              h("span", { class: "label" }, r.label),
              h("span", { class: "bar", dataset: { pct: Math.round((100 * r.value) / max) } }),
              h("span", { class: "value" }, format(r.value)),
            ),
          ),
        )
      : h("p", { class: "hint" }, "No data in this range."),
  );
}

function sizeBars(root) {
  // Widths are set from script (the page's CSP allows no inline styles).
  for (const bar of root.querySelectorAll(".bar[data-pct]")) bar.style.width = `${bar.dataset.pct}%`;
}

async function usageSection(users) {
  const days = h("input", { type: "number", min: 1, max: 365, value: 14, name: "days" });
  const box = h("div", { class: "charts" });
  const load = async () => {
    const to = new Date();
    const from = new Date(to.getTime() - Number(days.value) * 86400000);
    const span = { from: from.toISOString().slice(0, 10) };
    const [system, ...perUser] = await Promise.all([
      api("analytics/system", { query: span }),
      ...users.slice(0, 50).map((u) => api(`analytics/users/${u.id}`, { query: span })),
    ]);
    const perDay = new Map();
    for (const report of perUser) {
      for (const b of report.buckets) perDay.set(b.start.slice(0, 10), (perDay.get(b.start.slice(0, 10)) || 0) + b.total_tokens);
    }
    replace(
      box,
      h("p", {}, `${system.totals.turns} turns · ${system.totals.total_tokens} tokens · $${system.totals.cost_usd.toFixed(4)} · ${system.active_users} active users · error rate ${(100 * system.error_rate).toFixed(1)}%`),
      bars("Tokens per day", [...perDay.entries()].sort().map(([day, value]) => ({ label: day, value }))),
      bars("Cost per model (USD)", system.models.map((m) => ({ label: m.model || "unknown", value: m.cost_usd })), (v) => `$${v.toFixed(4)}`),
      bars("Tokens per model", system.models.map((m) => ({ label: m.model || "unknown", value: m.input_tokens + m.output_tokens }))),
      bars("Tokens per user", perUser.map((r) => ({ label: r.email, value: r.totals.total_tokens })).filter((r) => r.value > 0)),
    );
    sizeBars(box);
  };
  await load();
  return h("section", { class: "card", "aria-labelledby": "usage-h" }, h("h2", { id: "usage-h" }, "Usage and cost"), h("form", { class: "inline", onsubmit: (e) => (e.preventDefault(), load()) }, field("Last N days", days), h("button", { type: "submit" }, "Show")), box);
}

function usersSection(users) {
  const rows = users.map((u) => {
    const role = h("select", { "aria-label": `Role of ${u.email}` }, ["user", "admin"].map((r) => h("option", { value: r, selected: u.role === r }, r)));
    const active = h("input", { type: "checkbox", checked: u.is_active, "aria-label": `${u.email} is active` });
    const budget = h("input", { type: "number", min: 0, value: u.daily_token_budget ?? "", placeholder: "default", "aria-label": `Daily token budget of ${u.email}` });
    const save = async () => {
      const body = { role: role.value, is_active: active.checked };
      if (budget.value !== "") body.daily_token_budget = Number(budget.value);
      try {
        await api(`users/${u.id}`, { method: "PATCH", json: body });
        announce(`Saved ${u.email}.`);
      } catch (e) {
        announce(e.message, "error");
      }
    };
    return h("tr", {}, h("td", {}, u.email), h("td", {}, role), h("td", {}, active), h("td", {}, budget), h("td", {}, when(u.last_login_at)), h("td", {}, h("button", { type: "button", onclick: save }, "Save")));
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": "users-h" },
    h("h2", { id: "users-h" }, "Users"),
    h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["Email", "Role", "Active", "Daily tokens", "Last sign-in", ""].map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows))),
  );
}

function feedbackSection(users) {
  const emails = new Map(users.map((u) => [u.id, u.email]));
  const rating = h("select", { name: "rating" }, ["", "up", "down"].map((r) => h("option", { value: r }, r || "any")));
  const tag = h("input", { type: "text", name: "tag" });
  const body = h("tbody");
  const load = async () => {
    const page = await api("feedback", { query: { rating: rating.value, tag: tag.value.trim(), limit: 100 } });
    replace(
      body,
      page.items.length ? null : h("tr", {}, h("td", { colspan: 6, class: "hint" }, "No feedback.")),
      page.items.map((f) =>
        h("tr", { dataset: { messageId: f.message_id } }, h("td", {}, f.rating === "up" ? "▲ up" : "▼ down"), h("td", {}, emails.get(f.user_id) || f.user_id), h("td", {}, f.model || ""), h("td", {}, f.comment || ""), h("td", {}, f.tags.join(", ")), h("td", {}, when(f.created_at))),
      ),
    );
  };
  load();
  return h(
    "section",
    { class: "card", "aria-labelledby": "feedback-h" },
    h("h2", { id: "feedback-h" }, "Feedback"),
    h("form", { class: "inline", onsubmit: (e) => (e.preventDefault(), load()) }, field("Rating", rating), field("Tag", tag), h("button", { type: "submit" }, "Filter")),
    h("div", { class: "table-wrap" }, h("table", { id: "feedback-table" }, h("thead", {}, h("tr", {}, ["Rating", "User", "Model", "Comment", "Tags", "When"].map((c) => h("th", { scope: "col" }, c)))), body)),
  );
}

export function keysSection() {
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 100 });
  const created = h("div", { "aria-live": "polite" });
  const body = h("tbody");
  const load = async () => {
    const keys = await api("api-keys");
    replace(
      body,
      keys.length ? null : h("tr", {}, h("td", { colspan: 5, class: "hint" }, "No keys.")),
      keys.map((k) =>
        h("tr", {}, h("td", {}, k.name), h("td", {}, h("code", {}, `${k.prefix}…`)), h("td", {}, when(k.created_at)), h("td", {}, when(k.last_used_at) || "never"), h("td", {}, h("button", { type: "button", class: "danger", onclick: async () => { await api(`api-keys/${k.id}`, { method: "DELETE" }); announce("Key revoked."); load(); } }, "Revoke"))),
      ),
    );
  };
  load();
  return h(
    "section",
    { class: "card", "aria-labelledby": "keys-h" },
    h("h2", { id: "keys-h" }, "My API keys"),
    h("form", { class: "inline", onsubmit: async (e) => {
      e.preventDefault();
      const key = await api("api-keys", { method: "POST", json: { name: name.value.trim() } });
      replace(created, h("p", { class: "notice" }, "Copy this key now; it is shown only once: ", h("code", {}, key.key)));
      name.value = "";
      load();
    } }, field("Name", name), h("button", { type: "submit", class: "primary" }, "Create key")),
    created,
    h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Prefix", "Created", "Last used", ""].map((c) => h("th", { scope: "col" }, c)))), body)),
  );
}

export async function render(main) {
  const user = currentUser();
  main.append(h("h1", {}, "Admin"));
  if (!user || user.role !== "admin") {
    main.append(h("p", {}, "You need the admin role for this page."), keysSection());
    return;
  }
  const users = (await api("users", { query: { limit: 100 } })).items;
  main.append(feedbackSection(users), usersSection(users), await usageSection(users), keysSection());
}
