// The approvals inbox: pending approvals, live (SSE), with approve / reject / modify, and history.
import { SessionExpired, api, currentUser, renew, stream } from "./api.js";
import { approvalCard } from "./approval_card.js";
import { announce, h, replace, when } from "./dom.js";

// Who decided, by email where the caller may list users (admins), else "you" or the id.
const names = new Map();

function decider(approval) {
  if (approval.status === "expired" && !approval.decided_by) return "MAI (expired)";
  if (!approval.decided_by) return "";
  const me = currentUser();
  if (me && approval.decided_by === me.id) return `you (${me.email})`;
  return names.get(approval.decided_by) || approval.decided_by;
}

function historyRow(approval) {
  return h(
    "tr",
    { dataset: { approvalId: approval.id } },
    h("td", {}, h("code", {}, approval.tool)),
    h("td", {}, approval.status),
    h("td", {}, decider(approval)),
    h("td", {}, when(approval.decided_at)),
    h("td", {}, approval.decision_reason || ""),
    h("td", {}, h("a", { href: `#/chat/${approval.conversation_id}` }, "conversation")),
  );
}

export async function render(main) {
  const closed = new AbortController();
  const pending = h("div", { class: "approval-list", "aria-live": "polite" });
  const history = h("tbody");
  const live = h("span", { class: "hint" }, "connecting…");
  main.append(
    h("h1", {}, "Approvals"),
    h("p", { class: "hint" }, "Tool calls waiting for a person. New ones appear here as they arrive ", live, "."),
    h("section", { "aria-labelledby": "pending-h" }, h("h2", { id: "pending-h" }, "Pending"), pending),
    h(
      "section",
      { "aria-labelledby": "history-h" },
      h("h2", { id: "history-h" }, "History"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Tool", "Decision", "Decided by", "When", "Reason", "From"].map((c) => h("th", { scope: "col" }, c)))),
          history,
        ),
      ),
    ),
  );

  const empty = () => {
    if (!pending.querySelector(".approval")) replace(pending, h("p", { class: "hint empty" }, "Nothing is waiting for you."));
  };
  const add = (approval, newest = true) => {
    if (document.getElementById(`approval-${approval.id}`)) return;
    const placeholder = pending.querySelector(".empty");
    if (placeholder) placeholder.remove();
    const card = approvalCard(approval, { onDecided: (decided) => setTimeout(() => moveToHistory(decided), 800) });
    if (newest) pending.prepend(card);
    else pending.append(card);
  };
  const moveToHistory = (approval) => {
    const card = document.getElementById(`approval-${approval.id}`);
    if (card) card.remove();
    const row = history.querySelector(`[data-approval-id="${approval.id}"]`);
    if (row) row.replaceWith(historyRow(approval));
    else history.prepend(historyRow(approval));
    empty();
  };

  const me = currentUser();
  if (me && me.role === "admin" && !names.size) {
    const users = await api("users", { query: { limit: 100 } });
    for (const user of users.items) names.set(user.id, user.email);
  }
  const [open, decided] = await Promise.all([
    api("approvals", { query: { status: "pending", limit: 100 } }),
    api("approvals", { query: { limit: 50 } }),
  ]);
  open.items.forEach((a) => add(a, false));
  empty();
  replace(history, decided.items.filter((a) => a.status !== "pending").map(historyRow));

  // Live updates; the stream ends when the access token expires (or the network drops): get a
  // fresh token, catch up with the list, and listen again.
  const listen = async () => {
    while (!closed.signal.aborted) {
      let tokenExpired = false;
      try {
        await stream("approvals/events", {
          signal: closed.signal,
          onEvent: ({ event, data }) => {
            if (event === "ready") live.textContent = "(live)";
            if (event === "error" && data && data.error === "token_expired") tokenExpired = true;
            const approval = data && data.approval;
            if (!approval) return;
            if (event === "approval.requested") {
              add(approval);
              announce(`New approval: ${approval.tool}.`);
            } else if (event === "approval.decided" || event === "approval.expired") {
              moveToHistory(approval);
            }
          },
        });
      } catch (e) {
        if (e.name === "AbortError" || e instanceof SessionExpired) return;
        live.textContent = `(reconnecting: ${e.message})`;
      }
      if (closed.signal.aborted) return;
      live.textContent = "(reconnecting…)";
      try {
        if (tokenExpired) await renew();
        else await new Promise((r) => setTimeout(r, 3000));
        const open = await api("approvals", { query: { status: "pending", limit: 100 } });
        open.items.forEach((a) => add(a, false));
      } catch (e) {
        if (e instanceof SessionExpired) return;
      }
    }
  };
  listen();
  return () => closed.abort();
}
