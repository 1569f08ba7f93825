// One approval as a card: the tool, its arguments, where it came from, the time left, and the
// decisions (approve, reject with a reason, modify with a JSON editor). Used by the inbox and chat.
import { ApiError, api, currentUser } from "./api.js";
import { announce, field, h, when } from "./dom.js";

function countdown(expiresAt) {
  const el = h("span", { class: "expiry" });
  const tick = () => {
    const left = Math.max(0, new Date(expiresAt).getTime() - Date.now());
    const minutes = Math.floor(left / 60000);
    const text =
      left <= 0
        ? "expired"
        : minutes >= 60
          ? `${Math.floor(minutes / 60)} h ${minutes % 60} min left`
          : `${minutes} min ${Math.floor((left % 60000) / 1000)} s left`;
    el.textContent = text;
    el.title = `Expires ${when(expiresAt)}`;
  };
  tick();
  const timer = setInterval(() => (el.isConnected ? tick() : clearInterval(timer)), 1000);
  return el;
}

function statusText(approval) {
  if (approval.status === "pending") return "Waiting for a decision";
  const by = approval.decided_at ? ` at ${when(approval.decided_at)}` : "";
  const reason = approval.decision_reason ? ` (reason: ${approval.decision_reason})` : "";
  return `${approval.status[0].toUpperCase()}${approval.status.slice(1)}${by}${reason}`;
}

/**
 * A card for `approval`. `decide(kind, body)` performs the decision (it defaults to the JSON
 * endpoints); `onDecided(approval)` runs after a decision succeeded.
 */
export function approvalCard(approval, { decide, onDecided, showConversation = true } = {}) {
  const id = `approval-${approval.id}`;
  const error = h("p", { class: "error", role: "alert" });
  const reason = h("input", { type: "text", maxlength: 2000, name: "reason" });
  const editor = h("textarea", { rows: 6, spellcheck: "false", class: "json", name: "args" });
  editor.value = JSON.stringify(approval.edited_args || approval.args, null, 2);
  const status = h("p", { class: "approval-status" }, statusText(approval));
  const buttons = h("div", { class: "actions" });
  const card = h(
    "article",
    { class: `card approval ${approval.status}`, id, "aria-labelledby": `${id}-title`, dataset: { approvalId: approval.id } },
    h("h3", { id: `${id}-title` }, "Tool: ", h("code", {}, approval.tool)),
    h(
      "p",
      { class: "meta" },
      showConversation
        ? [h("a", { href: `#/chat/${approval.conversation_id}` }, "Open the conversation"), " · "]
        : null,
      "requested ",
      when(approval.requested_at),
      approval.status === "pending" ? [" · ", countdown(approval.expires_at)] : null,
    ),
    approval.reason ? h("p", {}, "Why: ", approval.reason) : null,
    h("h4", {}, "Arguments"),
    h("pre", { class: "args" }, JSON.stringify(approval.args, null, 2)),
    approval.edited_args
      ? [h("h4", {}, "Approved with"), h("pre", { class: "args" }, JSON.stringify(approval.edited_args, null, 2))]
      : null,
    status,
  );
  if (approval.status !== "pending") return card;

  const run = async (kind, body) => {
    error.textContent = "";
    for (const b of buttons.querySelectorAll("button")) b.disabled = true;
    try {
      const perform = decide || ((k, b) => api(`approvals/${approval.id}/${k}`, { method: "POST", json: b }));
      await perform(kind, body);
      const decided = { ...approval, status: kind === "reject" ? "rejected" : "approved", decided_at: new Date().toISOString(), decided_by: (currentUser() || {}).id, decision_reason: body.reason || null };
      card.className = `card approval ${decided.status}`;
      status.textContent = statusText(decided);
      buttons.remove();
      modify.remove();
      announce(`The ${approval.tool} call was ${decided.status}.`);
      if (onDecided) onDecided(decided);
    } catch (e) {
      const problems = e instanceof ApiError && e.meta && e.meta.errors;
      error.textContent = problems
        ? `${e.message} ${problems.map((p) => `${p.field}: ${p.message}`).join("; ")}`
        : e.message;
      for (const b of buttons.querySelectorAll("button")) b.disabled = false;
    }
  };
  const withReason = () => (reason.value.trim() ? { reason: reason.value.trim() } : {});
  const modify = h(
    "details",
    { class: "modify" },
    h("summary", {}, "Modify the arguments"),
    field("Arguments (JSON)", editor, "Checked against the tool's schema when you send it"),
    h(
      "button",
      {
        type: "button",
        onclick: () => {
          let args;
          try {
            args = JSON.parse(editor.value);
          } catch (e) {
            error.textContent = `The arguments are not valid JSON: ${e.message}`;
            editor.focus();
            return;
          }
          if (!args || typeof args !== "object" || Array.isArray(args)) {
            error.textContent = "The arguments must be a JSON object.";
            editor.focus();
            return;
          }
          run("modify", { args, ...withReason() });
        },
      },
      "Approve with these arguments",
    ),
  );
  buttons.append(
    h("button", { type: "button", class: "primary", onclick: () => run("approve", withReason()) }, "Approve"),
    h("button", { type: "button", class: "danger", onclick: () => run("reject", withReason()) }, "Reject"),
  );
  card.append(field("Reason (optional; the model sees it)", reason), buttons, modify, error);
  return card;
}
