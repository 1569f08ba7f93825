// Sign in and sign up: the existing /auth endpoints; the tokens go to api.js.
import { authenticate } from "./api.js";
import { go } from "./app.js";
import { announce, field, h } from "./dom.js";

function form(kind, main, query) {
  const signUp = kind === "register";
  const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
  const password = h("input", {
    type: "password",
    name: "password",
    autocomplete: signUp ? "new-password" : "current-password",
    minlength: 8,
    required: true,
  });
  const name = h("input", { type: "text", name: "full_name", autocomplete: "name" });
  const error = h("p", { class: "error", role: "alert" });
  const next = query.get("next") || "#/chat";
  const submit = async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { email: email.value.trim(), password: password.value };
    if (signUp && name.value.trim()) body.full_name = name.value.trim();
    try {
      await authenticate(kind, body);
      announce(signUp ? "Account created; you are signed in." : "Signed in.");
      go(next.startsWith("#/sign") ? "#/chat" : next);
    } catch (e) {
      error.textContent = e.message;
      password.focus();
    }
  };
  const other = signUp
    ? h("p", {}, "Have an account? ", h("a", { href: `#/signin?next=${encodeURIComponent(next)}` }, "Sign in"))
    : h("p", {}, "New here? ", h("a", { href: `#/signup?next=${encodeURIComponent(next)}` }, "Create an account"));
  const heading = h("h1", { tabindex: "-1" }, signUp ? "Create an account" : "Sign in");
  main.append(
    h(
      "section",
      { class: "auth card" },
      heading,
      query.get("expired")
        ? h("p", { class: "notice" }, "Your session ended. Sign in again; your draft is kept.")
        : null,
      h(
        "form",
        { onsubmit: submit, "aria-label": signUp ? "Sign up" : "Sign in" },
        field("Email", email),
        signUp ? field("Name (optional)", name) : null,
        field("Password", password, signUp ? "8 to 72 bytes; mix letters, digits or symbols" : null),
        error,
        h("button", { type: "submit", class: "primary" }, signUp ? "Sign up" : "Sign in"),
      ),
      other,
    ),
  );
  email.focus();
}

export function renderSignIn(main, route) {
  form("login", main, route.query);
}

export function renderSignUp(main, route) {
  form("register", main, route.query);
}
