// The REST client: JSON in, JSON out (parsed with parseJSON so ids stay exact),
// authenticated with this tab's device token (accounts.js). No cookies are involved, so
// there is no CSRF token to send either.

import { parseJSON } from "./json.js";
import { currentToken } from "./accounts.js";

export class ApiError extends Error {
  constructor(status, code, message, fields = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

// Called when the session is gone (logged out elsewhere, device revoked).
let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(handler) {
  onUnauthenticated = handler;
}

export async function request(method, path, body = undefined, { quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  // No cookies: the token alone says who this tab is (a browser session from elsewhere,
  // e.g. the admin, must not stand in for it).
  const init = { method, headers, credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  // The tab's device token; without one (log-in, sign-up) the request is anonymous.
  const token = currentToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch("/api/v1/" + path, init);
  } catch {
    throw new ApiError(0, "network_error", "No connection to the server.");
  }
  const text = response.status === 204 ? "" : await response.text();
  let data = null;
  if (text) {
    try {
      data = parseJSON(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    const apiError = new ApiError(
      response.status,
      error.code || "http_" + response.status,
      error.message || response.statusText || "Request failed.",
      error.fields || {},
    );
    if (response.status === 401 && !quiet401) {
      onUnauthenticated();
    }
    throw apiError;
  }
  return data;
}

export const api = {
  get: (path, options) => request("GET", path, undefined, options),
  post: (path, body, options) => request("POST", path, body ?? {}, options),
  patch: (path, body) => request("PATCH", path, body),
  del: (path) => request("DELETE", path),
};

// A short, human name for this browser, shown in the devices list.
export function browserDeviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua)
    ? "Edge"
    : /Firefox\//.test(ua)
      ? "Firefox"
      : /Chrome\//.test(ua)
        ? "Chrome"
        : /Safari\//.test(ua)
          ? "Safari"
          : "Browser";
  const os = /Android/.test(ua)
    ? "Android"
    : /iPhone|iPad/.test(ua)
      ? "iOS"
      : /Mac OS X/.test(ua)
        ? "macOS"
        : /Windows/.test(ua)
          ? "Windows"
          : /Linux/.test(ua)
            ? "Linux"
            : "";
  return os ? `${browser} on ${os}` : browser;
}
