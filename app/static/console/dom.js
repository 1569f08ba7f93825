// Tiny DOM helpers: build elements without innerHTML, so text from the API is never parsed as HTML.

/** h("button", {class: "x", onclick: fn, disabled: true}, "text", child) -> HTMLElement */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "value" || name === "checked") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children (strings, nodes, arrays, null) to an element. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A labelled form field: <label for=id>text</label><input id=id ...>. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const parts = [h("label", { for: id }, label), input];
  if (hint) {
    const hintId = `${id}-hint`;
    input.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/** Local date and time of an ISO timestamp. */
export function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString();
}

/** Announce a message to screen readers and show it in the status bar. */
export function announce(text, kind = "info") {
  const bar = document.getElementById("status");
  if (!bar) return;
  bar.dataset.kind = kind;
  bar.textContent = text;
  clearTimeout(announce.timer);
  // Errors stay until the next message; the rest fade so the bar does not cover the page.
  if (kind !== "error") announce.timer = setTimeout(() => (bar.textContent = ""), 6000);
}
