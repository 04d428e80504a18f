// Service worker, served at /sw.js so that its scope is the whole site.
//
// * App shell offline: the page, styles, scripts and icons are cached; requests for them
//   go to the network first (so a deploy is picked up at once) and fall back to the cache.
//   The API and the WebSocket are never cached: messages come only from the server.
// * Web Push: shows a notification; clicking it focuses an open tab on the conversation,
//   or opens one.

const CACHE = "chat-shell-v1";
const SHELL = [
  "/",
  "/manifest.webmanifest",
  "/static/app/app.css",
  "/static/app/js/main.js",
  "/static/app/js/accounts.js",
  "/static/app/js/api.js",
  "/static/app/js/json.js",
  "/static/app/js/dom.js",
  "/static/app/js/store.js",
  "/static/app/js/socket.js",
  "/static/app/js/ui.js",
  "/static/app/js/conversation.js",
  "/static/app/js/pages.js",
  "/static/app/js/extras.js",
  "/static/app/icons/icon.svg",
  "/static/app/icons/icon-192.png",
  "/static/app/icons/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

function isShellRequest(url, request) {
  if (url.origin !== self.location.origin || request.method !== "GET") return false;
  if (request.mode === "navigate") return url.pathname === "/";
  return url.pathname.startsWith("/static/app/") || url.pathname === "/manifest.webmanifest";
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (!isShellRequest(url, event.request)) return;
  const key = event.request.mode === "navigate" ? "/" : url.pathname;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(key, copy));
        }
        return response;
      })
      .catch(() => caches.match(key).then((cached) => cached || Response.error())),
  );
});

// Payloads are described in docs/protocol.md ("Push notifications"): "message" shows a
// notification, one per conversation (tag), replacing the previous one; "clear" (the user
// read the conversation on another device) removes it.
self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { type: "message", body: event.data ? event.data.text() : "" };
  }
  const tag = data.tag || (data.conversation_id ? `conv-${data.conversation_id}` : "chat");
  if (typeof data.badge === "number" && self.navigator.setAppBadge) {
    (data.badge ? self.navigator.setAppBadge(data.badge) : self.navigator.clearAppBadge()).catch(() => null);
  }
  if (data.type === "clear") {
    event.waitUntil(
      self.registration.getNotifications({ tag }).then((list) => list.forEach((n) => n.close())),
    );
    return;
  }
  // Title and body carry user-supplied names and text: isolate them (FSI ... PDI) so bidi
  // controls in them cannot reorder the rest of the notification.
  const isolated = (text) => `\u2068${text}\u2069`;
  const options = {
    body: data.body ? isolated(data.body) : "",
    icon: "/static/app/icons/icon-192.png",
    badge: "/static/app/icons/icon-192.png",
    tag,
    renotify: true,
    data: { url: data.conversation_id ? `/#/c/${data.conversation_id}` : "/" },
  };
  event.waitUntil(self.registration.showNotification(data.title ? isolated(data.title) : "New message", options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((clients) => {
      for (const client of clients) {
        if (new URL(client.url).origin === self.location.origin) {
          return client.focus().then((focused) => (focused || client).navigate(target));
        }
      }
      return self.clients.openWindow(target);
    }),
  );
});
