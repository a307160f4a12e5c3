// The /v1 API from the browser: the key the person typed (sessionStorage: gone when the tab
// closes), sent as X-API-Key. Every failure becomes one ApiError with a kind the pages translate.

const KEY = "instore.dash.key";

export class ApiError extends Error {
  /** kind: unauthorized | forbidden_store | forbidden | not_found | server | network | other */
  constructor(kind, status, message, detail) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.detail = detail || {};
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(value) {
  sessionStorage.setItem(KEY, value);
}

export function forgetApiKey() {
  sessionStorage.removeItem(KEY);
}

function kindOf(status, code) {
  if (status === 401) return "unauthorized";
  if (status === 403) return code === "forbidden_store" || code === "store_forbidden" ? "forbidden_store" : "forbidden";
  if (status === 404) return "not_found";
  if (status >= 500) return "server";
  return "other";
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (exc) {
    throw new ApiError("network", 0, String(exc));
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const detail = payload && typeof payload.detail === "object" && !Array.isArray(payload.detail) ? payload.detail : {};
    const message = detail.message || (payload && typeof payload.detail === "string" ? payload.detail : response.statusText);
    throw new ApiError(kindOf(response.status, detail.code), response.status, message, detail);
  }
  return payload;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});
export const put = (path, body) => call("PUT", path, body ?? {});
export const del = (path) => call("DELETE", path);

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return pairs.length ? "?" + new URLSearchParams(pairs).toString() : "";
}
