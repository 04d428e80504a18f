// Shared pieces of the interface: the conversation list, the connection banner, toasts
// and the confirm dialog.

import { h, clear, shortTime, avatar, relativeTime, bdi } from "./dom.js";

// --- confirm dialog and toasts --------------------------------------------------------------

export function confirmDialog(text, confirmLabel = "OK") {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = confirmLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

let toastRegion = null;
export function toast(text) {
  if (!toastRegion) {
    toastRegion = h("div", { class: "toasts", role: "alert", "aria-live": "assertive" });
    document.body.append(toastRegion);
  }
  const item = h("p", { class: "toast" }, text);
  toastRegion.append(item);
  setTimeout(() => item.remove(), 5000);
}

// --- connection state -----------------------------------------------------------------------

export function connectionLabel(connection) {
  switch (connection.state) {
    case "live":
      return "";
    case "connecting":
      return "Connecting…";
    case "syncing":
      return "Updating…";
    case "reconnecting":
      return "Reconnecting…";
    case "waiting": {
      const seconds = Math.max(1, Math.round((connection.detail.retryAt - Date.now()) / 1000));
      return `Connection lost. Reconnecting in ${seconds} s…`;
    }
    case "offline":
      return "You are offline. Messages will be sent when the connection is back.";
    case "refused":
      return connection.detail.message || "The server refused the connection.";
    default:
      return "Not connected.";
  }
}

let countdown = null;
export function renderConnection(store) {
  const label = connectionLabel(store.connection);
  for (const el of document.querySelectorAll(".connection")) {
    el.textContent = label;
    el.hidden = !label;
    el.dataset.state = store.connection.state;
  }
  document.body.dataset.connection = store.connection.state;
  clearTimeout(countdown);
  if (store.connection.state === "waiting") countdown = setTimeout(() => renderConnection(store), 1000);
}

// --- presence (filled in by presence.js when the server has it) -----------------------------

export function presenceLine(store, userId) {
  if (!userId) return "";
  const presence = store.presence && store.presence.get(userId);
  if (!presence) return "";
  if (presence.online) return "online";
  return presence.last_seen ? `last seen ${relativeTime(presence.last_seen)}` : "offline";
}

function presenceDot(store, conv) {
  const peer = store.peerOf(conv);
  const presence = peer && store.presence && store.presence.get(peer);
  if (!presence || !presence.online) return null;
  return h("span", { class: "presence-dot", role: "img", "aria-label": "online", title: "online" });
}

// --- conversation list ----------------------------------------------------------------------

export function renderConversationList(store, { filter = "", activeId = null } = {}) {
  const list = document.getElementById("conversation-list");
  const empty = document.getElementById("conversation-empty");
  const needle = filter.trim().toLowerCase();
  const items = [];
  const all = store.sortedConversations();
  for (const conv of all) {
    const title = store.title(conv);
    const last = conv.last_message;
    let who = "";
    let preview = "";
    if (last) {
      who = last.sender_id === store.me.id ? "You" : conv.kind === "group" ? store.displayName(last.sender_id) : "";
      preview = last.deleted ? "Message deleted" : last.text.slice(0, 200).replace(/\s+/g, " ");
    } else if (conv.kind === "group") {
      preview = "Group created";
    }
    if (needle && !title.toLowerCase().includes(needle) && !`${who}: ${preview}`.toLowerCase().includes(needle)) continue;
    const unread = conv.unread_count > 0;
    items.push(h("li", {},
      h("a", {
        href: `#/c/${conv.id}`,
        class: `conversation-item${unread ? " unread" : ""}${conv.id === activeId ? " active" : ""}`,
        "aria-current": conv.id === activeId ? "page" : null,
        dataset: { conversationId: conv.id },
      },
      h("span", { class: "avatar-wrap" }, avatar(title), presenceDot(store, conv)),
      h("span", { class: "item-main" },
        h("span", { class: "item-row" },
          h("span", { class: "item-title" }, bdi(title), conv.muted ? h("span", { class: "muted-icon" }, " (muted)") : null),
          h("time", { class: "item-time", datetime: last ? last.created_at : conv.created_at }, shortTime(last ? last.created_at : conv.created_at))),
        h("span", { class: "item-row" },
          h("span", { class: "item-preview" }, who ? [bdi(who), ": "] : null, bdi(preview)),
          unread
            ? h("span", { class: "badge" },
                h("span", { "aria-hidden": "true" }, conv.unread_count > 99 ? "99+" : String(conv.unread_count)),
                h("span", { class: "visually-hidden" }, `, ${conv.unread_count} unread`))
            : null)))));
  }
  clear(list, items);
  empty.hidden = all.length > 0;
  const allUnread = totalUnread(store);
  document.title = allUnread ? `(${allUnread}) Chat` : "Chat";
  // The installed app's icon badge (where the platform has one).
  if (navigator.setAppBadge) {
    (allUnread ? navigator.setAppBadge(allUnread) : navigator.clearAppBadge()).catch(() => null);
  }
}

function totalUnread(store) {
  let total = 0;
  for (const conv of store.conversations.values()) if (!conv.left && !conv.muted) total += conv.unread_count;
  return total;
}
