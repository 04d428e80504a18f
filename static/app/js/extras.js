// Presence (online / last seen), typing indicators and Web Push notifications.
//
// Each degrades quietly when the server does not offer it (an older server answers the
// `watch` frame with an error and the REST endpoints with 404), so the core chat never
// depends on them.

import { api } from "./api.js";
import { h, clear, isolated } from "./dom.js";
import { idOf } from "./json.js";
import { toast } from "./ui.js";

// Send `typing` at most this often while the user keeps typing (the server also throttles).
const TYPING_SEND_EVERY_MS = 2000;
// Show "… is typing" this long after the last typing event from that person.
const TYPING_SHOW_MS = 6000;
const PUSH_REGISTRATION_KEY = "chat.pushRegistration";

function base64UrlToBytes(value) {
  const base64 = (value + "=".repeat((4 - (value.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

export function createExtras(store) {
  store.presence = new Map(); // userId -> {online, last_seen}
  const typing = new Map(); // conversationId -> Map(userId -> timer)
  const typingSentAt = new Map(); // conversationId -> ms

  function setPresence(entry) {
    const userId = idOf(entry.user_id);
    if (entry.status === null || entry.status === undefined) store.presence.delete(userId);
    else store.presence.set(userId, { online: entry.status === "online", last_seen: entry.last_active_at });
  }

  function clearTyping(conversationId, userId) {
    const typers = typing.get(conversationId);
    if (!typers || !typers.has(userId)) return;
    clearTimeout(typers.get(userId));
    typers.delete(userId);
    store.emit("typing", conversationId);
  }

  // The snapshot covers whom we watched when we connected; a direct conversation started
  // since (by us or them) makes a new watched person, whose current state we ask for once.
  const asked = new Set();
  let askTimer = null;
  store.addEventListener("conversations", () => {
    clearTimeout(askTimer);
    askTimer = setTimeout(() => {
      const peers = [];
      for (const conv of store.conversations.values()) {
        const peer = store.peerOf(conv);
        if (peer && !store.presence.has(peer) && !asked.has(peer)) peers.push(peer);
      }
      if (peers.length) loadPresence(peers);
    }, 300);
  });

  async function loadPresence(userIds) {
    const ids = userIds.filter((id) => id !== store.me.id && !asked.has(id)).slice(0, 200);
    if (!ids.length) return;
    for (const id of ids) asked.add(id);
    try {
      const page = await api.get(`presence?ids=${ids.join(",")}`);
      for (const entry of page.results) setPresence(entry);
      store.emit("presence");
    } catch {
      // Older server without presence: nothing to show.
    }
  }

  // Someone's message ends their typing indicator at once.
  store.addEventListener("incoming", (event) => {
    clearTyping(event.detail.conversation_id, event.detail.sender_id);
    notifyIfHidden(event.detail);
  });

  // A tab that is open but hidden keeps its socket and acknowledges what it receives, so
  // the server does not push to it: it shows the notification itself.
  let doNotDisturb = false;
  api.get("push/settings").then((settings) => { doNotDisturb = settings.do_not_disturb; }).catch(() => null);
  store.addEventListener("push-settings", (event) => { doNotDisturb = event.detail.do_not_disturb; });
  async function notifyIfHidden(message) {
    const conv = store.conversations.get(message.conversation_id);
    if (document.visibilityState === "visible" || doNotDisturb || !conv || conv.muted) return;
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (localStorage.getItem(PUSH_REGISTRATION_KEY) === null) return; // notifications are off
    const sender = store.displayName(message.sender_id);
    const registration = await navigator.serviceWorker.ready;
    await registration.showNotification(isolated(conv.kind === "group" ? conv.name : sender), {
      body: conv.kind === "group" ? `${isolated(sender)}: ${isolated(message.text)}` : isolated(message.text),
      tag: `conv-${conv.id}`,
      icon: "/static/app/icons/icon-192.png",
      data: { url: `/#/c/${conv.id}` },
    });
  }

  return {
    handleFrame(frame) {
      if (frame.type === "presence") {
        setPresence(frame);
        store.emit("presence");
        return true;
      }
      if (frame.type === "typing") {
        const conversationId = idOf(frame.conversation_id);
        const userId = idOf(frame.user_id);
        if (userId === store.me.id) return true;
        if (!typing.has(conversationId)) typing.set(conversationId, new Map());
        const typers = typing.get(conversationId);
        clearTimeout(typers.get(userId));
        typers.set(userId, setTimeout(() => clearTyping(conversationId, userId), TYPING_SHOW_MS));
        store.ensureUsers([userId]).then(() => store.emit("typing", conversationId));
        return true;
      }
      return false;
    },

    typing(conversationId) {
      const now = Date.now();
      if (now - (typingSentAt.get(conversationId) || 0) < TYPING_SEND_EVERY_MS) return;
      if (!store.socket || !store.socket.live) return;
      typingSentAt.set(conversationId, now);
      store.socket.sendFrame({ type: "typing", conversation_id: Number(conversationId) });
    },

    stoppedTyping(conversationId) {
      // The message itself tells the others; let the next keystroke send `typing` at once.
      typingSentAt.delete(conversationId);
    },

    typingText(conversationId) {
      const typers = typing.get(conversationId);
      if (!typers || typers.size === 0) return "";
      const names = [...typers.keys()].map((id) => store.displayName(id));
      return names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
    },

    // After every (re)connection: the presence of everyone we watch, then live changes.
    async onLive() {
      try {
        const snapshot = await store.socket.request({ type: "watch" });
        store.presence.clear();
        asked.clear();
        for (const entry of snapshot.users || []) setPresence(entry);
        store.emit("presence");
      } catch (error) {
        if (error.code !== "offline") console.info("Presence is not available:", error.message);
      }
    },

    // Presence of users we do not watch (group members): asked once, over REST.
    loadPresence,

    notificationSettings() {
      return notificationSettings(store);
    },
  };
}

// --- settings screen section --------------------------------------------------------------------

function toggle(label, { checked, onChange, id, hint = null }) {
  const input = h("input", { type: "checkbox", id, checked });
  input.addEventListener("change", async () => {
    input.disabled = true;
    try {
      input.checked = await onChange(input.checked);
    } catch (error) {
      input.checked = !input.checked;
      toast(error.message);
    } finally {
      input.disabled = false;
    }
  });
  return h("div", {}, h("label", { class: "switch", for: id }, input, label), hint ? h("p", { class: "hint" }, hint) : null);
}

function notificationSettings(store) {
  const section = h("div", { class: "stack", id: "notification-settings" }, h("p", { class: "hint" }, "Loading…"));
  (async () => {
    const parts = [];
    const [pushSettings, presenceSettings] = await Promise.all([
      api.get("push/settings").catch(() => null),
      api.get("presence/settings").catch(() => null),
    ]);
    if (pushSettings) {
      parts.push(pushToggle());
      parts.push(toggle("Do not disturb (no notifications on any device)", {
        id: "setting-dnd",
        checked: pushSettings.do_not_disturb,
        onChange: async (on) => {
          const settings = await api.patch("push/settings", { do_not_disturb: on });
          store.emit("push-settings", settings);
          return settings.do_not_disturb;
        },
      }));
      parts.push(toggle("Show message text in notifications", {
        id: "setting-preview",
        checked: pushSettings.show_preview,
        onChange: async (on) => (await api.patch("push/settings", { show_preview: on })).show_preview,
      }));
      parts.push(h("p", { class: "hint" }, "To mute one conversation, open its info."));
    } else {
      parts.push(h("p", { class: "hint" }, "Notifications are not available on this server."));
    }
    if (presenceSettings) {
      parts.push(toggle("Hide when I am online", {
        id: "setting-hide-presence",
        checked: presenceSettings.hidden,
        hint: "Others will not see whether you are online or when you were last seen.",
        onChange: async (on) => (await api.patch("presence/settings", { hidden: on })).hidden,
      }));
    }
    clear(section, parts);
  })();
  return section;
}

function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function pushToggle() {
  if (!pushSupported()) {
    return h("p", { class: "hint" }, "This browser cannot receive notifications.");
  }
  const enabled = Notification.permission === "granted" && localStorage.getItem(PUSH_REGISTRATION_KEY) !== null;
  return toggle("Notifications on this device", {
    id: "setting-push",
    checked: enabled,
    hint: Notification.permission === "denied" ? "Notifications are blocked in this browser's site settings." : null,
    onChange: async (on) => (on ? enablePush() : disablePush()),
  });
}

async function enablePush() {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error("Notifications were not allowed.");
  const registration = await navigator.serviceWorker.ready;
  const { public_key: publicKey } = await api.get("push/vapid-key");
  let subscription = await registration.pushManager.getSubscription();
  if (!subscription) {
    subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: base64UrlToBytes(publicKey),
    });
  }
  const saved = await api.post("push/registrations", { kind: "webpush", subscription: subscription.toJSON() });
  localStorage.setItem(PUSH_REGISTRATION_KEY, String(saved.id));
  return true;
}

async function disablePush() {
  const registration = await navigator.serviceWorker.ready;
  const subscription = await registration.pushManager.getSubscription();
  if (subscription) await subscription.unsubscribe();
  const id = localStorage.getItem(PUSH_REGISTRATION_KEY);
  localStorage.removeItem(PUSH_REGISTRATION_KEY);
  if (id) await api.del(`push/registrations/${id}`).catch(() => null);
  return false;
}
