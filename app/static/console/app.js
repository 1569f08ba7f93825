// The console's shell: routes by URL fragment, shows the signed-in user, hands views a root element.
import { clearSession, currentUser, signedIn, signOut, whenExpired } from "./api.js";
import { announce } from "./dom.js";

const views = {
  signin: () => import("./auth.js").then((m) => m.renderSignIn),
  signup: () => import("./auth.js").then((m) => m.renderSignUp),
  chat: () => import("./chat.js").then((m) => m.render),
  approvals: () => import("./approvals.js").then((m) => m.render),
  kb: () => import("./kb.js").then((m) => m.render),
  memory: () => import("./memory.js").then((m) => m.render),
  admin: () => import("./admin.js").then((m) => m.render),
};
const PUBLIC = new Set(["signin", "signup"]);
let cleanup = null;

/** Parse "#/chat/abc?x=1" into {name: "chat", args: ["abc"], query: URLSearchParams}. */
export function parseRoute(hash = location.hash) {
  const [path, qs] = hash.replace(/^#\/?/, "").split("?");
  const [name, ...args] = path.split("/").filter(Boolean);
  return { name: name || "chat", args, query: new URLSearchParams(qs || "") };
}

/** Go to a route (a fragment like "#/chat/123"). */
export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function showAccount() {
  const user = currentUser();
  const nav = document.getElementById("nav");
  const account = document.getElementById("account");
  nav.hidden = !user;
  account.hidden = !user;
  document.getElementById("nav-admin").hidden = !(user && user.role === "admin");
  document.getElementById("account-email").textContent = user ? user.email : "";
  for (const link of nav.querySelectorAll("a[href^='#/']")) {
    const current = location.hash.startsWith(link.getAttribute("href"));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

let routing = 0;

async function route() {
  // Only the latest navigation renders (a slow view import must not render over a newer one).
  const ticket = ++routing;
  const current = parseRoute();
  if (!views[current.name]) return go("#/chat");
  if (!PUBLIC.has(current.name) && !signedIn()) {
    return go(`#/signin?next=${encodeURIComponent(location.hash || "#/chat")}`);
  }
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  showAccount();
  const main = document.getElementById("view");
  main.replaceChildren();
  const render = await views[current.name]();
  if (ticket !== routing) return;
  const stop = await render(main, current);
  const release = typeof stop === "function" ? stop : null;
  // A newer navigation began while this view was still loading: that view owns the page now,
  // so this one lets go of its streams and timers instead of taking the place of its cleanup.
  if (ticket !== routing) {
    if (release) release();
    return;
  }
  cleanup = release;
}

whenExpired(() => {
  if (location.hash.startsWith("#/signin")) return;
  const next = location.hash.startsWith("#/signin") ? "#/chat" : location.hash || "#/chat";
  announce("Your session ended. Sign in again; your draft is kept.", "error");
  go(`#/signin?expired=1&next=${encodeURIComponent(next)}`);
});

document.getElementById("sign-out").addEventListener("click", async () => {
  await signOut();
  clearSession();
  go("#/signin");
});

window.addEventListener("hashchange", route);
window.addEventListener("unhandledrejection", (event) => {
  const error = event.reason;
  if (error && error.name === "AbortError") return;
  if (error && error.constructor && error.constructor.name === "SessionExpired") return;
  announce(error && error.message ? error.message : String(error), "error");
});
route();
