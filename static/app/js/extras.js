// Presence, typing and push notifications. The server side of these is being added;
// until its endpoints and frames exist these functions degrade to no-ops, so the rest of
// the app does not depend on them.

import { h } from "./dom.js";

export function createExtras(store) {
  store.presence = new Map(); // userId -> {online, last_seen}
  const typingByConversation = new Map(); // conversationId -> Map(userId -> expiry ms)

  return {
    // Frames the core app does not know (presence, typing). True when handled.
    handleFrame(_frame) {
      return false;
    },
    typing(_conversationId) {},
    stoppedTyping(_conversationId) {},
    typingText(conversationId) {
      const typers = typingByConversation.get(conversationId);
      if (!typers || typers.size === 0) return "";
      const names = [...typers.keys()].map((id) => store.displayName(id));
      return names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
    },
    onLive() {},
    notificationSettings() {
      return h("p", { class: "hint" }, "Notifications are not available on this server yet.");
    },
  };
}
