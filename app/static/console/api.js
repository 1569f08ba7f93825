// The public MAI API as the console uses it: bearer tokens with refresh, JSON calls, SSE over fetch
// (EventSource cannot send an Authorization header).

const KEY = "mai.session";
let session = load();
let refreshing = null;
let onExpired = () => {};

function load() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

/** An error answered by the API, in MAI's error shape {error, detail, request_id, meta}. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.error) || "http_error";
    this.meta = (body && body.meta) || {};
  }
}

/** The session ended (refresh refused): the user must sign in again. */
export class SessionExpired extends Error {}

export function currentUser() {
  return session ? session.user : null;
}

export function signedIn() {
  return Boolean(session && session.access_token);
}

/** Keep a token pair from /auth/login, /auth/register or /auth/refresh. */
export function saveSession(tokens) {
  session = tokens;
  localStorage.setItem(KEY, JSON.stringify(tokens));
}

export function clearSession() {
  session = null;
  localStorage.removeItem(KEY);
}

/** What to do when the session cannot be refreshed (the app goes back to sign-in). */
export function whenExpired(callback) {
  onExpired = callback;
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return new ApiError(response.status, body);
}

async function refresh() {
  if (!refreshing) {
    const token = session && session.refresh_token;
    refreshing = (async () => {
      if (!token) throw new SessionExpired();
      const response = await fetch("/api/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: token }),
      });
      if (!response.ok) throw new SessionExpired();
      saveSession(await response.json());
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** Get a fresh access token now (a stream ended with token_expired); SessionExpired if refused. */
export async function renew() {
  try {
    await refresh();
  } catch {
    throw expired();
  }
}

function expired() {
  clearSession();
  onExpired();
  return new SessionExpired("Your session ended; sign in again.");
}

/** fetch with the access token; one refresh and retry on 401. */
async function authed(path, init = {}) {
  if (!session) throw expired();
  const send = () =>
    fetch(path, {
      ...init,
      headers: { ...(init.headers || {}), Authorization: `Bearer ${session.access_token}` },
    });
  let response = await send();
  if (response.status === 401) {
    try {
      await refresh();
    } catch {
      throw expired();
    }
    response = await send();
    if (response.status === 401) throw expired();
  }
  return response;
}

function url(path, query) {
  const full = path.startsWith("/") ? path : `/api/v1/${path}`;
  if (!query) return full;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== "") params.set(k, v);
  }
  const qs = params.toString();
  return qs ? `${full}?${qs}` : full;
}

/** Call the API: `api("agent/conversations", {query: {limit: 50}})`; JSON back, ApiError on failure. */
export async function api(path, { method = "GET", json, form, query, signal, anonymous } = {}) {
  const init = { method, signal, headers: {} };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = form;
  }
  const response = anonymous ? await fetch(url(path, query), init) : await authed(url(path, query), init);
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Sign in or up; keeps the tokens. */
export async function authenticate(kind, body) {
  const tokens = await api(`auth/${kind}`, { method: "POST", json: body, anonymous: true });
  saveSession(tokens);
  return tokens.user;
}

/** Sign out: revoke the tokens (best effort) and forget them. */
export async function signOut() {
  try {
    if (session) await api("auth/logout", { method: "POST" });
  } catch {
    // The tokens are forgotten here either way.
  }
  clearSession();
}

/** Upload with progress (fetch has no upload progress): resolves to the JSON answer. */
export async function upload(path, form, onProgress) {
  const attempt = () =>
    new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url(path));
      xhr.setRequestHeader("Authorization", `Bearer ${session.access_token}`);
      xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
      xhr.onload = () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = null;
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body);
        else reject(new ApiError(xhr.status, body));
      };
      xhr.onerror = () => reject(new ApiError(0, { detail: "The upload failed (network)." }));
      xhr.send(form);
    });
  if (!session) throw expired();
  try {
    return await attempt();
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    try {
      await refresh();
    } catch {
      throw expired();
    }
    return attempt();
  }
}

/**
 * Read a server-sent event stream: calls onEvent({event, id, data}) per event (data parsed as
 * JSON). Resolves when the stream ends; rejects with ApiError when it cannot start.
 */
export async function stream(path, { method = "GET", json, query, lastEventId, signal, onEvent }) {
  const headers = { Accept: "text/event-stream" };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  const response = await authed(url(path, query), {
    method,
    headers,
    signal,
    body: json !== undefined ? JSON.stringify(json) : undefined,
  });
  if (!response.ok) throw await errorOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let current = { event: "message", id: null, data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      let line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (current.data.length) {
          const raw = current.data.join("\n");
          let data;
          try {
            data = JSON.parse(raw);
          } catch {
            data = raw;
          }
          onEvent({ event: current.event, id: current.id, data });
        }
        current = { event: "message", id: null, data: [] };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? "" : line.slice(colon + 1);
      if (val.startsWith(" ")) val = val.slice(1);
      if (name === "event") current.event = val;
      else if (name === "data") current.data.push(val);
      else if (name === "id") current.id = val;
    }
  }
}
