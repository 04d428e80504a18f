// The client's state and how protocol events change it. Views subscribe to change events
// ("conversations", "messages", "members", "connection") and re-render what they show.
//
// Ids: user and conversation ids are small numbers on the wire but are kept as strings
// like message ids, so every id in the app has one type. Message ids are compared with
// compareIds (BigInt), never as numbers.

import { api } from "./api.js";
import { compareIds, idOf, maxId } from "./json.js";
import { newClientMsgId } from "./dom.js";

export const MAX_TEXT_LENGTH = 99999;
const HISTORY_PAGE = 50;

function normalizeMessage(raw) {
  return {
    ...raw,
    id: idOf(raw.id),
    conversation_id: idOf(raw.conversation_id),
    sender_id: idOf(raw.sender_id),
  };
}

export class Store extends EventTarget {
  constructor() {
    super();
    this.me = null;
    this.users = new Map(); // id -> {id, username, display_name}
    this.userRequests = new Map(); // id -> Promise, so each user is fetched once
    this.conversations = new Map();
    this.outbox = []; // unacknowledged sends, in the order they were made
    this.connection = { state: "connecting", detail: {} };
    this.socket = null;
    this.openConversationId = null;
    this.drafts = new Map(); // conversationId -> unsent text
  }

  emit(type, detail = null) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // --- users ------------------------------------------------------------------------------

  setMe(me) {
    this.me = { ...me, id: idOf(me.id) };
    this.users.set(this.me.id, this.me);
    this.outbox = this.loadOutbox();
  }

  displayName(userId) {
    const user = this.users.get(idOf(userId));
    if (!user) return "…";
    return user.display_name || user.username;
  }

  async ensureUsers(ids) {
    const missing = ids.map(idOf).filter((id) => id && !this.users.has(id));
    await Promise.all(
      missing.map((id) => {
        if (!this.userRequests.has(id)) {
          this.userRequests.set(
            id,
            api
              .get(`users/${id}`)
              .then((user) => this.users.set(id, { ...user, id }))
              .catch(() => this.users.set(id, { id, username: "deleted user", display_name: "" })),
          );
        }
        return this.userRequests.get(id);
      }),
    );
  }

  // --- conversations ----------------------------------------------------------------------

  upsertConversation(raw) {
    const id = idOf(raw.id);
    const existing = this.conversations.get(id);
    const conv = existing || {
      id,
      // Messages by id: live ones as they arrive, history merged in when it is loaded.
      messages: new Map(),
      historyLoaded: false,
      reachedStart: false,
      members: null, // Map userId -> {role, last_read_id, last_delivered_id}
      member_ids: null,
      unread_count: 0,
      last_read_id: "0",
      last_message: null,
      muted: false,
      role: "member",
      left: false,
    };
    for (const key of ["kind", "name", "created_at", "muted", "role"]) {
      if (raw[key] !== undefined) conv[key] = raw[key];
    }
    // A REST answer that left the server before a `read` event we already applied would
    // put the unread badge back: its read position is older than ours, so keep ours.
    const restRead = raw.last_read_id !== undefined ? idOf(raw.last_read_id) || "0" : null;
    const staleRead = existing && restRead !== null && compareIds(restRead, conv.last_read_id || "0") < 0;
    if (raw.unread_count !== undefined && !staleRead) conv.unread_count = raw.unread_count;
    if (restRead !== null) conv.last_read_id = maxId(conv.last_read_id, restRead);
    if (raw.last_message_id !== undefined) {
      conv.last_message_id = maxId(conv.last_message_id, idOf(raw.last_message_id));
    }
    if (raw.last_message) this.setLastMessage(conv, normalizeMessage(raw.last_message));
    if (raw.member_ids) conv.member_ids = raw.member_ids.map(idOf);
    if (raw.members) {
      conv.members = new Map(
        raw.members.map((m) => [
          idOf(m.user_id),
          {
            role: m.role,
            last_read_id: idOf(m.last_read_id) || "0",
            last_delivered_id: idOf(m.last_delivered_id) || "0",
          },
        ]),
      );
      conv.member_ids = [...conv.members.keys()];
    }
    this.conversations.set(id, conv);
    return conv;
  }

  setLastMessage(conv, message) {
    if (!conv.last_message || compareIds(message.id, conv.last_message.id) >= 0) {
      conv.last_message = message;
      conv.last_message_id = maxId(conv.last_message_id, message.id);
    }
  }

  async loadConversations() {
    let offset = 0;
    const seen = new Set();
    for (;;) {
      const page = await api.get(`conversations?limit=200&offset=${offset}`);
      for (const raw of page.results) seen.add(this.upsertConversation(raw).id);
      if (!page.has_more) break;
      offset += page.results.length;
    }
    // Conversations we were removed from while this tab was away.
    for (const id of [...this.conversations.keys()]) {
      if (!seen.has(id)) this.conversations.delete(id);
    }
    // The list does not carry members; direct conversations need theirs for a title.
    await Promise.all(
      [...this.conversations.values()]
        .filter((c) => c.member_ids === null)
        .map((c) => this.loadConversationDetail(c.id).catch(() => null)),
    );
    this.emit("conversations");
  }

  async loadConversationDetail(id) {
    const raw = await api.get(`conversations/${id}`);
    const conv = this.upsertConversation(raw);
    await this.ensureUsers(conv.member_ids || []);
    this.emit("members", conv.id);
    return conv;
  }

  sortedConversations() {
    const key = (c) => (c.last_message ? c.last_message.created_at : c.created_at) || "";
    return [...this.conversations.values()]
      .filter((c) => !c.left)
      .sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0));
  }

  peerOf(conv) {
    if (conv.kind !== "direct" || !conv.member_ids) return null;
    return conv.member_ids.find((id) => id !== this.me.id) || null;
  }

  title(conv) {
    if (conv.kind === "group") return conv.name;
    const peer = this.peerOf(conv);
    return peer ? this.displayName(peer) : "…";
  }

  // --- history ----------------------------------------------------------------------------

  // Loads the newest page (first open) or the page before the oldest loaded message.
  // Returns how many messages arrived.
  async loadHistory(conversationId, { older = false } = {}) {
    const conv = this.conversations.get(conversationId);
    if (!conv) return 0;
    let query = `limit=${HISTORY_PAGE}`;
    if (older && conv.messages.size) {
      const oldest = [...conv.messages.keys()].reduce((a, b) => (compareIds(a, b) <= 0 ? a : b));
      query += `&before=${oldest}`;
    }
    const page = await api.get(`conversations/${conversationId}/messages?${query}`);
    if (!older && page.results.length === HISTORY_PAGE) {
      // Live messages kept from before this first load may be older than the page: drop
      // them, or paging back from the oldest one would skip what lies between.
      const oldest = idOf(page.results.at(-1).id);
      for (const id of [...conv.messages.keys()]) {
        if (compareIds(id, oldest) < 0) conv.messages.delete(id);
      }
    }
    for (const raw of page.results) {
      const message = normalizeMessage(raw);
      conv.messages.set(message.id, message);
      this.setLastMessage(conv, message);
    }
    if (page.results.length < HISTORY_PAGE) conv.reachedStart = true;
    conv.historyLoaded = true;
    await this.ensureUsers(page.results.map((m) => m.sender_id));
    this.emit("messages", conv.id);
    return page.results.length;
  }

  // After a reset sync page (docs/protocol.md): events this tab missed were pruned, so its
  // conversations and loaded history are reloaded from the server, which keeps history.
  async reloadAfterReset() {
    for (const conv of this.conversations.values()) {
      conv.messages.clear();
      conv.historyLoaded = false;
      conv.reachedStart = false;
    }
    await this.loadConversations();
    if (this.openConversationId && this.conversations.has(this.openConversationId)) {
      await this.loadHistory(this.openConversationId);
    }
  }

  sortedMessages(conv) {
    return [...conv.messages.values()].sort((a, b) => compareIds(a.id, b.id));
  }

  pendingFor(conversationId) {
    return this.outbox.filter((item) => item.conversation_id === conversationId);
  }

  // --- protocol events --------------------------------------------------------------------

  applyEvent(event) {
    switch (event.type) {
      case "message.new":
      case "message.edited":
      case "message.deleted":
        this.applyMessage(normalizeMessage(event.message), event.type === "message.new");
        break;
      case "sent":
        this.acknowledgeSend(event);
        break;
      case "read": {
        const conv = this.conversations.get(idOf(event.conversation_id));
        if (!conv) break;
        conv.last_read_id = maxId(conv.last_read_id, idOf(event.last_read_id));
        conv.unread_count = event.unread_count;
        this.emit("conversations");
        break;
      }
      case "member.added":
      case "member.removed":
      case "conversation.updated":
        this.applyMembership(event);
        break;
      default:
        break;
    }
  }

  applyMessage(message, isNew) {
    let conv = this.conversations.get(message.conversation_id);
    if (!conv) {
      // A message in a conversation we have not seen announced (should not happen: the
      // member.added event comes first); fetch it.
      conv = this.upsertConversation({ id: message.conversation_id, kind: "direct", name: "" });
      this.loadConversationDetail(conv.id).catch(() => null);
    }
    const mine = message.sender_id === this.me.id;
    if (mine && isNew) this.removeFromOutbox(message.client_msg_id);
    // The REST list already counted messages up to its last_message_id; only later ones
    // are news for the unread badge.
    const isLater = !conv.last_message_id || compareIds(message.id, conv.last_message_id) > 0;
    if (isNew && isLater && !mine && !message.deleted &&
        compareIds(message.id, conv.last_read_id || "0") > 0) {
      conv.unread_count += 1;
    }
    conv.messages.set(message.id, message);
    if (conv.last_message && conv.last_message.id === message.id) conv.last_message = message;
    else this.setLastMessage(conv, message);
    if (!this.users.has(message.sender_id)) {
      this.ensureUsers([message.sender_id]).then(() => this.emit("messages", conv.id));
    }
    this.emit("messages", conv.id);
    this.emit("conversations");
    if (isNew && isLater && !mine) this.emit("incoming", message);
  }

  applyMembership(event) {
    const raw = event.conversation;
    const userIds = (event.user_ids || []).map(idOf);
    const removedMe = event.type === "member.removed" && userIds.includes(this.me.id);
    const conv = this.upsertConversation(raw);
    if (removedMe) {
      conv.left = true;
    } else if (event.type === "member.added" && userIds.includes(this.me.id)) {
      conv.left = false;
    }
    if (conv.members && raw.member_ids) {
      // Keep read positions of those still there; newcomers start unknown.
      const next = new Map();
      for (const id of raw.member_ids.map(idOf)) {
        next.set(id, conv.members.get(id) || { role: "member", last_read_id: "0", last_delivered_id: "0" });
      }
      conv.members = next;
    }
    this.ensureUsers(conv.member_ids || []).then(() => {
      this.emit("members", conv.id);
      this.emit("conversations");
    });
    // Roles can change with membership (an owner leaving hands over); reload them.
    if (!removedMe && conv.id === this.openConversationId) {
      this.loadConversationDetail(conv.id).catch(() => null);
    }
    this.emit("members", conv.id);
    this.emit("conversations");
  }

  applyReceipt(frame) {
    const conv = this.conversations.get(idOf(frame.conversation_id));
    if (!conv || !conv.members) return;
    const member = conv.members.get(idOf(frame.user_id));
    if (!member) return;
    if (frame.read_id !== undefined) {
      member.last_read_id = maxId(member.last_read_id, idOf(frame.read_id));
      member.last_delivered_id = maxId(member.last_delivered_id, idOf(frame.read_id));
    }
    if (frame.delivered_id !== undefined) {
      member.last_delivered_id = maxId(member.last_delivered_id, idOf(frame.delivered_id));
    }
    this.emit("receipts", conv.id);
  }

  // --- sending ----------------------------------------------------------------------------

  outboxKey() {
    return `chat.outbox.${this.me.id}`;
  }

  loadOutbox() {
    try {
      return JSON.parse(localStorage.getItem(this.outboxKey()) || "[]");
    } catch {
      return [];
    }
  }

  saveOutbox() {
    // Kept across reloads: a message typed while offline is still sent later.
    try {
      localStorage.setItem(this.outboxKey(), JSON.stringify(this.outbox));
    } catch {
      // Storage full or disabled: the outbox still lives for this tab.
    }
  }

  send(conversationId, text) {
    const item = {
      client_msg_id: newClientMsgId(),
      conversation_id: conversationId,
      text,
      created_at: new Date().toISOString(),
      error: null,
    };
    this.outbox.push(item);
    this.saveOutbox();
    this.transmit(item);
    this.emit("messages", conversationId);
    return item;
  }

  transmit(item) {
    if (!this.socket || !this.socket.live) return;
    this.socket.sendFrame({
      type: "send",
      ref: `s:${item.client_msg_id}`,
      conversation_id: Number(item.conversation_id),
      client_msg_id: item.client_msg_id,
      text: item.text,
    });
  }

  // After every (re)sync: resend what was never acknowledged, in order, with the same
  // client_msg_id, so the server stores each message once.
  flushOutbox() {
    for (const item of this.outbox) if (!item.error) this.transmit(item);
  }

  retry(clientMsgId) {
    const item = this.outbox.find((i) => i.client_msg_id === clientMsgId);
    if (!item) return;
    item.error = null;
    this.saveOutbox();
    this.transmit(item);
    this.emit("messages", item.conversation_id);
  }

  discard(clientMsgId) {
    const item = this.removeFromOutbox(clientMsgId);
    if (item) this.emit("messages", item.conversation_id);
  }

  removeFromOutbox(clientMsgId) {
    const index = this.outbox.findIndex((i) => i.client_msg_id === clientMsgId);
    if (index < 0) return null;
    const [item] = this.outbox.splice(index, 1);
    this.saveOutbox();
    return item;
  }

  acknowledgeSend(frame) {
    const item = this.removeFromOutbox(frame.client_msg_id);
    const conversationId = idOf(frame.conversation_id);
    const conv = this.conversations.get(conversationId);
    if (!conv) return;
    const id = idOf(frame.message_id);
    const existing = conv.messages.get(id);
    const message = existing || {
      id,
      conversation_id: conversationId,
      sender_id: this.me.id,
      client_msg_id: frame.client_msg_id,
      text: item ? item.text : "",
      length: item ? [...item.text].length : 0,
      truncated: false,
      created_at: frame.created_at,
      edited_at: null,
      deleted: false,
    };
    if (!existing && !item) {
      // A duplicate ack for a message this tab never had: read it from the server.
      this.socket.sendFrame({ type: "fetch", message_ids: [id] });
      return;
    }
    conv.messages.set(id, message);
    this.setLastMessage(conv, message);
    this.emit("messages", conversationId);
    this.emit("conversations");
  }

  sendFailed(frame) {
    const clientMsgId = frame.ref.slice(2);
    const item = this.outbox.find((i) => i.client_msg_id === clientMsgId);
    if (!item) return;
    if (frame.code === "rate_limited" || frame.code === "server_error") {
      // Transient: try again after the window (or a moment) passes.
      const seconds = frame.retry_after || 2;
      setTimeout(() => this.transmit(item), seconds * 1000);
      return;
    }
    item.error = frame.message;
    this.saveOutbox();
    this.emit("messages", item.conversation_id);
  }

  applyFetched(messages) {
    for (const raw of messages) this.applyMessage(normalizeMessage(raw), false);
  }

  // --- read state -------------------------------------------------------------------------

  // The newest message from someone else that is beyond our read position, if any.
  unreadTarget(conv) {
    let newest = null;
    for (const message of conv.messages.values()) {
      if (message.sender_id === this.me.id) continue;
      if (newest === null || compareIds(message.id, newest) > 0) newest = message.id;
    }
    if (newest === null || compareIds(newest, conv.last_read_id || "0") <= 0) return null;
    return newest;
  }

  markRead(conversationId) {
    const conv = this.conversations.get(conversationId);
    if (!conv || !this.socket || !this.socket.live) return;
    const target = this.unreadTarget(conv);
    if (!target) return;
    // One read frame per new position; forgotten on reconnect in case it was lost.
    if (conv.readSent && compareIds(conv.readSent, target) >= 0) return;
    conv.readSent = target;
    this.socket.sendFrame({ type: "read", conversation_id: Number(conv.id), message_id: target });
  }

  // Receipt state of one of our own messages: "read", "delivered" or "sent".
  receiptState(conv, message) {
    if (!conv.members) return "sent";
    const others = [...conv.members.entries()].filter(([id]) => id !== this.me.id);
    if (others.length === 0) return "sent";
    const readAll = others.every(([, m]) => compareIds(m.last_read_id, message.id) >= 0);
    if (readAll) return "read";
    if (conv.kind === "direct" && others.every(([, m]) => compareIds(m.last_delivered_id, message.id) >= 0)) {
      return "delivered";
    }
    return "sent";
  }

  readBy(conv, message) {
    if (!conv.members) return [];
    return [...conv.members.entries()]
      .filter(([id, m]) => id !== this.me.id && compareIds(m.last_read_id, message.id) >= 0)
      .map(([id]) => id);
  }
}
