// Chat: conversations (rename, delete), the graph to talk to, answers streamed token by token,
// tool calls with results, sources, feedback, stop, rejoining a running answer after a reload,
// and approvals inline when a turn pauses.
import { ApiError, SessionExpired, api, renew, stream } from "./api.js";
import { approvalCard } from "./approval_card.js";
import { announce, field, h, replace } from "./dom.js";

const RUN_KEY = "mai.run";
const GRAPH_KEY = "mai.graph";
// Nodes whose model output is not part of the answer (routing, memory bookkeeping).
const SILENT_NODES = new Set(["route", "recall_memories", "update_memories", "moderate", "classify"]);

const draftKey = (conversationId) => `mai.draft.${conversationId || "new"}`;

function savedRun() {
  try {
    return JSON.parse(sessionStorage.getItem(RUN_KEY) || "null");
  } catch {
    return null;
  }
}

function feedbackButtons(messageId, existing) {
  const box = h("div", { class: "feedback", role: "group", "aria-label": "Rate this answer" });
  const note = h("span", { class: "hint", role: "status" });
  const buttons = [
    ["up", "▲ Good", "Good answer"],
    ["down", "▼ Bad", "Bad answer"],
  ].map(([rating, icon, label]) =>
    h(
      "button",
      {
        type: "button",
        class: "rate",
        "aria-label": label,
        title: label,
        "aria-pressed": existing && existing.rating === rating ? "true" : "false",
        dataset: { rating },
        onclick: async () => {
          try {
            await api("feedback", { method: "POST", json: { message_id: messageId, rating } });
            for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.rating === rating));
            note.textContent = "Thanks for the feedback.";
          } catch (e) {
            note.textContent = e.message;
          }
        },
      },
      icon,
    ),
  );
  box.append(...buttons, note);
  return box;
}

function toolView(call) {
  const done = call.result !== undefined && call.result !== null;
  const summary = done
    ? `Used ${call.name}${call.status ? ` (${call.status}` : ""}${call.duration_ms != null ? `, ${Math.round(call.duration_ms)} ms` : ""}${call.status ? ")" : ""}`
    : `Calling ${call.name}…`;
  return h(
    "details",
    { class: "tool", dataset: { tool: call.name, callId: call.id || "" } },
    h("summary", {}, summary),
    h("h5", {}, "Arguments"),
    h("pre", {}, JSON.stringify(call.args || {}, null, 2)),
    done ? [h("h5", {}, "Result"), h("pre", { class: "result" }, typeof call.result === "string" ? call.result : JSON.stringify(call.result, null, 2))] : null,
  );
}

function sourcesView(citations) {
  if (!citations || !citations.length) return null;
  return h(
    "section",
    { class: "sources", "aria-label": "Sources" },
    h("h4", {}, "Sources"),
    h(
      "ol",
      {},
      citations.map((c) =>
        h(
          "li",
          {},
          h(
            "a",
            { href: `#/kb?doc=${encodeURIComponent(c.document_id)}${c.page ? `&page=${c.page}` : ""}` },
            `[${c.number ?? ""}] ${c.title || c.document_id}${c.page ? `, page ${c.page}` : ""}`,
          ),
          c.collection ? [" ", h("span", { class: "badge collection" }, c.collection)] : null,
          c.snippet ? h("blockquote", {}, c.snippet) : null,
          c.score != null ? h("small", { class: "hint" }, ` score ${Number(c.score).toFixed(3)}`) : null,
        ),
      ),
    ),
  );
}

/** An assistant message being written (or read back from history). */
class Bubble {
  constructor(log) {
    this.tools = h("div", { class: "tools" });
    this.text = h("div", { class: "content" });
    this.extra = h("div", { class: "extra" });
    this.approvals = h("div", { class: "approvals" });
    this.el = h("article", { class: "msg assistant", "aria-label": "Assistant" }, this.tools, this.text, this.approvals, this.extra);
    this.calls = new Map();
    log.append(this.el);
  }
  busy(on) {
    this.el.setAttribute("aria-busy", on ? "true" : "false");
    this.el.classList.toggle("streaming", on);
  }
  append(t) {
    this.text.append(t);
    this.el.scrollIntoView({ block: "end" });
  }
  setText(t) {
    this.text.textContent = t;
  }
  call(call) {
    const key = call.id || `${call.name}-${this.calls.size}`;
    const view = toolView(call);
    if (call.id && call.result !== undefined && call.result !== null) {
      // The same call shown as pending in an earlier message (before an approval) is done now.
      for (const old of document.querySelectorAll(`.tool[data-call-id="${CSS.escape(call.id)}"]`)) {
        if (!this.tools.contains(old)) old.replaceWith(toolView(call));
      }
    }
    if (this.calls.has(key)) this.calls.get(key).replaceWith(view);
    else this.tools.append(view);
    this.calls.set(key, view);
  }
  calls_(list) {
    this.tools.replaceChildren();
    this.calls.clear();
    list.forEach((c, i) => this.call({ id: c.id || `final-${i}`, ...c }));
  }
  finish(result) {
    if (typeof result.answer === "string" && result.answer) this.setText(result.answer);
    else if (result.output && !this.text.textContent) this.setText(JSON.stringify(result.output, null, 2));
    if (result.tool_calls) this.calls_(result.tool_calls);
    replace(this.extra, sourcesView(result.citations), result.message_id ? feedbackButtons(result.message_id, result.feedback) : null);
    if (result.message_id) this.el.dataset.messageId = result.message_id;
  }
  note(text, kind = "note") {
    this.extra.append(h("p", { class: kind, role: kind === "error" ? "alert" : null }, text));
  }
}

export async function render(main, route) {
  let conversationId = route.args[0] || null;
  let runId = null;
  let controller = null;
  // Set while the stop button cancels the run: its cancellation then reads "Stopped.".
  let stopping = false;
  let watcher = null;
  const closed = new AbortController();
  const decidingHere = new Set();

  const list = h("ul", { class: "conversation-list" });
  const title = h("h1", { class: "chat-title" }, "New conversation");
  const graph = h("select", { name: "graph" });
  const log = h("div", { class: "messages", role: "log", "aria-label": "Messages" });
  const input = h("textarea", { name: "message", rows: 3, required: true, placeholder: "Ask something… (Enter to send, Shift+Enter for a new line)" });
  const sendButton = h("button", { type: "submit", class: "primary" }, "Send");
  const stopButton = h("button", { type: "button", class: "danger", hidden: true, onclick: () => stop() }, "Stop");
  const error = h("p", { class: "error", role: "alert" });
  input.value = localStorage.getItem(draftKey(conversationId)) || "";
  input.addEventListener("input", () => localStorage.setItem(draftKey(conversationId), input.value));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  const form = h(
    "form",
    { class: "composer", onsubmit: (e) => { e.preventDefault(); send(); } },
    field("Message", input),
    h("div", { class: "actions" }, sendButton, stopButton),
    error,
  );
  main.append(
    h(
      "div",
      { class: "chat-layout" },
      h(
        "aside",
        { class: "sidebar", "aria-label": "Conversations" },
        h("h2", {}, "Conversations"),
        h("a", { class: "button", href: "#/chat" }, "+ New conversation"),
        list,
      ),
      h(
        "section",
        { class: "chat" },
        h("div", { class: "chat-head" }, title, field("Assistant", graph)),
        log,
        form,
      ),
    ),
  );

  function streaming(on) {
    sendButton.disabled = on;
    stopButton.hidden = !on;
    input.setAttribute("aria-busy", on ? "true" : "false");
  }

  async function loadGraphs() {
    try {
      const assistants = await api("/assistants/search", { method: "POST", json: { limit: 50 } });
      const ids = [...new Set(assistants.map((a) => a.graph_id))];
      const chosen = localStorage.getItem(GRAPH_KEY) || "assistant";
      replace(graph, ids.map((id) => h("option", { value: id, selected: id === chosen }, id)));
    } catch {
      replace(graph, h("option", { value: "assistant" }, "assistant"));
    }
    graph.addEventListener("change", () => localStorage.setItem(GRAPH_KEY, graph.value));
  }

  async function loadList() {
    const page = await api("agent/conversations", { query: { limit: 100 } });
    replace(
      list,
      page.items.length ? null : h("li", { class: "hint" }, "No conversations yet."),
      page.items.map((c) => {
        const link = h("a", { href: `#/chat/${c.id}`, "aria-current": c.id === conversationId ? "page" : null }, c.title || "Untitled", c.running ? " ●" : "");
        const item = h("li", { dataset: { conversationId: c.id } });
        const rename = h("button", { type: "button", class: "icon", "aria-label": `Rename ${c.title}`, title: "Rename", onclick: () => {
          const box = h("input", { type: "text", value: c.title, "aria-label": "New title", maxlength: 200 });
          const save = async (e) => {
            e.preventDefault();
            try {
              await api(`agent/conversations/${c.id}`, { method: "PATCH", json: { title: box.value } });
              if (c.id === conversationId) title.textContent = box.value;
              await loadList();
            } catch (err) {
              announce(err.message, "error");
            }
          };
          replace(item, h("form", { class: "rename", onsubmit: save }, box, h("button", { type: "submit" }, "Save"), h("button", { type: "button", onclick: () => loadList() }, "Cancel")));
          box.focus();
          box.select();
        } }, "✎");
        const remove = h("button", { type: "button", class: "icon", "aria-label": `Delete ${c.title}`, title: "Delete", onclick: async () => {
          if (!confirm(`Delete “${c.title}” and its messages?`)) return;
          try {
            await api(`agent/conversations/${c.id}`, { method: "DELETE" });
            announce("Conversation deleted.");
            if (c.id === conversationId) location.hash = "#/chat";
            else await loadList();
          } catch (err) {
            announce(err.message, "error");
          }
        } }, "✕");
        return replace(item, link, h("span", { class: "row-actions" }, rename, remove));
      }),
    );
  }

  function userBubble(text) {
    log.append(h("article", { class: "msg user", "aria-label": "You" }, h("div", { class: "content" }, text)));
  }

  /** The event handler of a run's stream, writing into `bubble`. */
  function handler(bubble, { onStart } = {}) {
    let text = bubble.text.textContent;
    return ({ event, id, data }) => {
      if (event === "metadata" && data) {
        if (data.run_id) runId = data.run_id;
        if (data.conversation_id && data.conversation_id !== conversationId) {
          localStorage.removeItem(draftKey(conversationId));
          conversationId = data.conversation_id;
          history.replaceState(null, "", `#/chat/${conversationId}`);
          loadList();
        }
        if (onStart) onStart();
      } else if (event === "messages" && Array.isArray(data)) {
        const [chunk, meta] = data;
        if (chunk && typeof chunk.content === "string" && chunk.content && String(chunk.type).startsWith("AI") && !SILENT_NODES.has(meta && meta.langgraph_node)) {
          text += chunk.content;
          bubble.append(chunk.content);
        }
      } else if (event === "updates" && data) {
        for (const [node, update] of Object.entries(data)) {
          if (node === "__interrupt__") showInterrupt(bubble, update);
          if (!update || typeof update !== "object") continue;
          for (const message of update.messages || []) {
            for (const call of message.tool_calls || []) bubble.call(call);
          }
          for (const run of update.tool_runs || []) bubble.call(run);
        }
      } else if (event === "values" && data) {
        bubble.finish(data);
        text = bubble.text.textContent;
        if (data.status === "awaiting_approval" && data.approvals) showApprovals(bubble, data.approvals);
      } else if (event === "error" && data) {
        bubble.note(data.detail || data.error || "The run failed.", "error");
      }
      if (id && runId) {
        sessionStorage.setItem(RUN_KEY, JSON.stringify({ conversation_id: conversationId, run_id: runId, last_event_id: id, text }));
      }
    };
  }

  function showInterrupt(bubble, interrupts) {
    const approvals = [];
    for (const item of interrupts || []) {
      const value = item && item.value;
      if (value && Array.isArray(value.approvals)) {
        approvals.push(...value.approvals.map((a) => ({ status: "pending", id: a.approval_id, ...a })));
      } else if (value !== undefined) {
        bubble.approvals.append(h("pre", { class: "interrupt" }, JSON.stringify(value, null, 2)));
      }
    }
    showApprovals(bubble, approvals);
  }

  function showApprovals(bubble, approvals) {
    const fresh = approvals.filter((a) => a.status === "pending" && !document.getElementById(`approval-${a.id}`));
    if (!fresh.length) return;
    bubble.approvals.append(h("p", { class: "notice" }, "This turn waits for approval before it goes on."));
    for (const approval of fresh) {
      bubble.approvals.append(
        approvalCard(approval, {
          showConversation: false,
          decide: (kind, body) => {
            decidingHere.add(approval.id);
            return follow(`approvals/${approval.id}/${kind}`, { method: "POST", json: body, query: { stream: true } });
          },
        }),
      );
    }
    watchDecisions(approvals[0].run_id);
  }

  /**
   * Stream a run into a new assistant bubble. Resolves once the stream started (its first
   * event), so a decision button can settle; the stream goes on in the background.
   */
  function follow(path, options, bubble = null) {
    return new Promise((resolve, reject) => {
      const target = bubble || new Bubble(log);
      target.busy(true);
      streaming(true);
      controller = new AbortController();
      let started = false;
      let tokenExpired = false;
      let rejoin = false;
      const onEvent = handler(target, { onStart: () => { started = true; resolve(); } });
      const relay = (e) => {
        if (!started) {
          started = true;
          resolve();
        }
        // The access token expired while the answer streamed: refresh and rejoin below.
        if (e.event === "error" && e.data && e.data.error === "token_expired") tokenExpired = true;
        else if (stopping && e.event === "error" && e.data && e.data.error === "run_cancelled") target.note("Stopped.");
        else onEvent(e);
      };
      stream(path, { ...options, signal: controller.signal, onEvent: relay })
        .then(async () => {
          if (tokenExpired && runId) {
            await renew();
            rejoin = true;
          }
        })
        .catch((e) => {
          if (!started) {
            target.el.remove();
            reject(e);
          } else if (e.name === "AbortError") {
            target.note("Stopped.");
          } else if (!(e instanceof SessionExpired)) {
            target.note(e.message, "error");
          }
        })
        .finally(() => {
          controller = null;
          if (rejoin) {
            const saved = savedRun();
            const lastEventId = saved && saved.run_id === runId ? saved.last_event_id : null;
            follow(`agent/runs/${runId}/stream`, { lastEventId }, target).catch((e) => announce(e.message, "error"));
            return;
          }
          target.busy(false);
          streaming(false);
          if (!target.text.textContent && !target.tools.childElementCount && !target.approvals.childElementCount && !target.extra.childElementCount) target.el.remove();
          controller = null;
          if (started) announce("The answer is complete.");
          loadList().catch(() => {});
        });
    });
  }

  async function send() {
    const message = input.value.trim();
    if (!message || controller) return;
    error.textContent = "";
    for (const hint of log.querySelectorAll(".empty")) hint.remove();
    userBubble(message);
    const bubble = new Bubble(log);
    const body = { message, graph: graph.value || "assistant" };
    if (conversationId) body.conversation_id = conversationId;
    try {
      await follow("agent/stream", { method: "POST", json: body }, bubble);
      input.value = "";
      localStorage.removeItem(draftKey(conversationId));
      localStorage.removeItem(draftKey(null));
      if (!route.args[0]) title.textContent = message.slice(0, 80);
    } catch (e) {
      log.lastElementChild && log.lastElementChild.classList.contains("user") && log.lastElementChild.remove();
      if (!(e instanceof SessionExpired)) error.textContent = e.message;
    }
  }

  async function stop() {
    const current = controller;
    const id = runId;
    stopButton.disabled = true;
    stopping = true;
    try {
      if (id) await api(`agent/runs/${id}/cancel`, { method: "POST" });
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 409)) announce(e.message, "error");
    } finally {
      if (current) current.abort();
      stopping = false;
      stopButton.disabled = false;
      announce("Stopped.");
    }
  }

  /** Someone (here or elsewhere) decided an approval of `pausedRun`: follow it once it resumes. */
  function watchDecisions(pausedRun) {
    if (watcher) return;
    watcher = new AbortController();
    const signal = AbortSignal.any ? AbortSignal.any([watcher.signal, closed.signal]) : watcher.signal;
    stream("approvals/events", {
      signal,
      onEvent: async ({ event, data }) => {
        const approval = data && data.approval;
        if (event !== "approval.decided" || !approval || approval.run_id !== pausedRun) return;
        const card = document.getElementById(`approval-${approval.id}`);
        if (card && !decidingHere.has(approval.id)) card.replaceWith(approvalCard(approval, { showConversation: false }));
        if (decidingHere.has(approval.id)) return;
        // Wait until the run left its pause (other approvals may still be pending). The polls
        // back off, so a slow resume does not spend the user's rate limit, and a refused poll
        // (rate limit, server busy) waits and asks again instead of giving up on the answer.
        let delay = 250;
        const giveUp = Date.now() + 10 * 60 * 1000;
        while (!closed.signal.aborted && Date.now() < giveUp) {
          let run = null;
          try {
            run = await api(`agent/runs/${pausedRun}`);
          } catch (e) {
            if (!(e instanceof ApiError) || e.status < 429) return;
          }
          if (run && run.status !== "interrupted") {
            if (!controller) follow(`agent/runs/${pausedRun}/stream`, {}).catch((e) => announce(e.message, "error"));
            return;
          }
          if (run && document.querySelector(".approval.pending")) return;
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 4000);
        }
      },
    }).catch(() => {});
  }

  async function loadConversation() {
    let detail;
    try {
      detail = await api(`agent/conversations/${conversationId}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        replace(log, h("p", { class: "error" }, "This conversation does not exist (or is not yours)."));
        return;
      }
      throw e;
    }
    title.textContent = detail.title;
    for (const message of detail.messages) {
      if (message.role === "user") userBubble(message.content);
      else if (message.role === "assistant") {
        const bubble = new Bubble(log);
        bubble.setText(message.content);
        bubble.finish({ tool_calls: message.tool_calls || [], citations: message.citations, message_id: message.id, feedback: message.feedback });
      }
    }
    const runs = await api(`agent/conversations/${conversationId}/runs`, { query: { limit: 1 } });
    const last = runs[0];
    if (!last) return;
    runId = last.run_id;
    if (last.status === "pending" || last.status === "running") {
      // Rejoin the answer being written: from the last event this tab saw, or from the start.
      const saved = savedRun();
      const bubble = new Bubble(log);
      let lastEventId = null;
      if (saved && saved.run_id === last.run_id && saved.last_event_id) {
        bubble.setText(saved.text || "");
        lastEventId = saved.last_event_id;
      }
      follow(`agent/runs/${last.run_id}/stream`, { lastEventId }, bubble).catch((e) => announce(e.message, "error"));
    } else if (last.status === "interrupted") {
      const page = await api("approvals", { query: { status: "pending", limit: 100 } });
      const pending = page.items.filter((a) => a.run_id === last.run_id);
      if (pending.length) showApprovals(new Bubble(log), pending);
    }
    const lastMessage = log.lastElementChild;
    if (lastMessage) lastMessage.scrollIntoView({ block: "end" });
  }

  loadGraphs();
  // The hint goes in first: a message sent while the list loads removes it rather than
  // finding it appended under its answer.
  if (!conversationId) log.append(h("p", { class: "hint empty" }, "Start a conversation: type a message below."));
  await loadList();
  if (conversationId) await loadConversation();
  input.focus();
  return () => {
    closed.abort();
    if (watcher) watcher.abort();
    // Leaving the page does not stop the run; only the stop button does.
    if (controller) controller.abort();
  };
}

