// The conversation screen: header, message history (infinite scroll upwards), composer.

import { h, clear, icon, richText, clockTime, fullTime, dayLabel, avatar, bdi } from "./dom.js";
import { MAX_TEXT_LENGTH } from "./store.js";
import { confirmDialog, toast, presenceLine } from "./ui.js";

const NEAR_TOP_PX = 200;
const NEAR_BOTTOM_PX = 80;
// The counter appears once a message gets close to the limit.
const COUNTER_FROM = MAX_TEXT_LENGTH - 1000;

export function conversationPage(main, store, conversationId, hooks) {
  const conv = store.conversations.get(conversationId);
  if (!conv || conv.left) {
    clear(
      main,
      h("div", { class: "placeholder" },
        h("p", {}, conv && conv.left ? "You are no longer a member of this conversation." : "Conversation not found."),
        h("a", { href: "#/" }, "Back to conversations")),
    );
    return () => {};
  }
  store.openConversationId = conv.id;

  const title = h("h2", { id: "conversation-title" });
  // A direct conversation also names the other person's @username: display names are not
  // unique, usernames are (and lookalike usernames are refused), so this is how to tell who
  // is really on the other end.
  const username = h("span", { class: "username", id: "conversation-username", hidden: true });
  const separator = h("span", { "aria-hidden": "true", hidden: true }, " · ");
  const subtitle = h("span", { id: "conversation-subtitle" });
  const subtitleLine = h("p", { class: "subtitle" }, username, separator, subtitle);
  const headerAvatar = h("span", { class: "header-avatar" });
  const header = h("header", { class: "pane-header" },
    h("a", { href: "#/", class: "icon-button back", "aria-label": "Back to conversations" }, icon("back")),
    headerAvatar,
    h("div", { class: "header-text" }, title, subtitleLine),
    h("a", { href: `#/c/${conv.id}/info`, class: "icon-button", "aria-label": "Conversation info", title: "Conversation info" }, icon("info")),
  );
  const historyStatus = h("p", { class: "history-status", "aria-live": "polite" });
  const list = h("ol", { class: "message-list", "aria-label": "Messages" });
  const scroller = h("div", { class: "messages", role: "log", "aria-live": "polite", "aria-relevant": "additions", tabindex: "0", "aria-label": "Message history" }, historyStatus, list);
  const typingLine = h("p", { class: "typing", "aria-live": "polite", id: "typing-indicator" });

  const textarea = h("textarea", {
    id: "composer-text", rows: "1", placeholder: "Message", "aria-label": "Message",
    enterkeyhint: "send", autocomplete: "off",
  });
  const counter = h("span", { class: "counter", id: "composer-counter", "aria-live": "polite", hidden: true });
  const sendButton = h("button", { type: "submit", class: "send", "aria-label": "Send" }, icon("send"));
  const editBanner = h("div", { class: "edit-banner", hidden: true },
    h("span", {}, "Editing message"),
    h("button", { type: "button", class: "link", onclick: () => stopEditing() }, "Cancel"));
  const form = h("form", { class: "composer", "aria-label": "Write a message" },
    editBanner, h("div", { class: "composer-row" }, textarea, counter, sendButton));

  clear(main, h("section", { class: "conversation", "aria-labelledby": "conversation-title" },
    header, h("div", { class: "connection", role: "status", hidden: true }), scroller, typingLine, form));

  let editing = null; // {id}
  let loadingOlder = false;
  let selectedKey = null;
  const rendered = new Map(); // key -> {signature, element}

  // --- header -----------------------------------------------------------------------------

  function renderHeader() {
    clear(title, bdi(store.title(conv)));
    clear(headerAvatar, avatar(store.title(conv)));
    if (conv.kind === "group") {
      const count = conv.member_ids ? conv.member_ids.length : 0;
      const online = (conv.member_ids || []).filter((id) => id !== store.me.id && store.presence && store.presence.get(id)?.online).length;
      subtitle.textContent = `${count} member${count === 1 ? "" : "s"}${online ? `, ${online} online` : ""}`;
    } else {
      const peer = store.users.get(store.peerOf(conv));
      clear(username, ...(peer ? ["@", bdi(peer.username)] : []));
      username.hidden = !peer;
      subtitle.textContent = presenceLine(store, store.peerOf(conv));
      separator.hidden = !peer || !subtitle.textContent;
    }
  }

  // --- messages ---------------------------------------------------------------------------

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
  }

  function tickFor(state) {
    const labels = { sent: "Sent", delivered: "Delivered", read: "Read" };
    return h("span", { class: `ticks ${state}`, role: "img", "aria-label": labels[state], title: labels[state] },
      state === "sent" ? "✓" : "✓✓");
  }

  function messageElement(message, { lastOwn }) {
    const mine = message.sender_id === store.me.id;
    const key = message.id;
    const receipt = mine ? store.receiptState(conv, message) : null;
    const readers = mine && lastOwn && conv.kind === "group" ? store.readBy(conv, message) : [];
    const senderName = store.displayName(message.sender_id);
    const signature = JSON.stringify([message.text, message.edited_at, message.deleted, message.truncated,
      receipt, readers, senderName, lastOwn]);
    const cached = rendered.get(key);
    if (cached && cached.signature === signature) return cached.element;

    const body = message.deleted
      ? h("p", { class: "text deleted" }, "This message was deleted")
      : h("p", { class: "text" }, h("bdi", {}, richText(message.text)));
    const bubble = h("div", { class: "bubble" },
      !mine && conv.kind === "group" ? h("p", { class: "sender" }, bdi(senderName)) : null,
      body,
      message.truncated && !message.deleted
        ? h("button", { type: "button", class: "link", onclick: () => fetchFull(message.id) }, "Show the whole message")
        : null,
      h("p", { class: "meta" },
        message.edited_at && !message.deleted ? h("span", { class: "edited" }, "edited") : null,
        h("time", { datetime: message.created_at, title: fullTime(message.created_at) }, clockTime(message.created_at)),
        mine && !message.deleted ? tickFor(receipt) : null),
    );
    const actions = mine && !message.deleted
      ? h("div", { class: "actions" },
          h("button", { type: "button", "aria-label": "Edit message", onclick: () => startEditing(message) }, "Edit"),
          h("button", { type: "button", "aria-label": "Delete message", class: "danger", onclick: () => deleteMessage(message) }, "Delete"))
      : null;
    const element = h("li", {
      class: `message ${mine ? "mine" : "theirs"}${message.deleted ? " is-deleted" : ""}`,
      dataset: { id: message.id, key },
    }, bubble, actions,
    readers.length
      ? h("p", { class: "read-by" }, readers.length === conv.member_ids.length - 1
          ? "Read by everyone"
          : ["Read by ", readers.map((id, i) => [i ? ", " : "", bdi(store.displayName(id))])])
      : null);
    bubble.addEventListener("click", (event) => {
      if (event.target.closest("a, button")) return;
      selectedKey = selectedKey === key ? null : key;
      for (const el of list.querySelectorAll(".message.selected")) el.classList.remove("selected");
      if (selectedKey === key) element.classList.add("selected");
    });
    // A message re-rendered while selected (a receipt tick changed under the user's finger)
    // keeps its actions open: without this the Edit/Delete buttons vanished mid-tap.
    if (selectedKey === key) element.classList.add("selected");
    rendered.set(key, { signature, element });
    return element;
  }

  function pendingElement(item) {
    const key = `pending:${item.client_msg_id}`;
    const signature = JSON.stringify([item.text, item.error]);
    const cached = rendered.get(key);
    if (cached && cached.signature === signature) return cached.element;
    const element = h("li", { class: `message mine pending${item.error ? " failed" : ""}`, dataset: { key } },
      h("div", { class: "bubble" },
        h("p", { class: "text" }, richText(item.text)),
        h("p", { class: "meta" },
          item.error
            ? h("span", { class: "error" }, `Not sent: ${item.error}`)
            : h("span", { class: "ticks pending", role: "img", "aria-label": "Sending", title: "Sending" }, icon("clock")))),
      item.error
        ? h("div", { class: "actions visible" },
            h("button", { type: "button", onclick: () => store.retry(item.client_msg_id) }, "Retry"),
            h("button", { type: "button", class: "danger", onclick: () => store.discard(item.client_msg_id) }, "Discard"))
        : null);
    rendered.set(key, { signature, element });
    return element;
  }

  function renderMessages() {
    const stick = atBottom();
    const previousHeight = scroller.scrollHeight;
    const previousTop = scroller.scrollTop;
    const messages = store.sortedMessages(conv);
    const lastOwn = [...messages].reverse().find((m) => m.sender_id === store.me.id && !m.deleted);
    const desired = [];
    let day = null;
    for (const message of messages) {
      const thisDay = new Date(message.created_at).toDateString(); // the reader's day
      if (thisDay !== day) {
        day = thisDay;
        const key = `day:${day.replace(/ /g, "-")}`;
        if (!rendered.has(key)) {
          rendered.set(key, { signature: "", element: h("li", { class: "day", dataset: { key } }, dayLabel(message.created_at)) });
        }
        desired.push(rendered.get(key).element);
      }
      desired.push(messageElement(message, { lastOwn: lastOwn && lastOwn.id === message.id }));
    }
    for (const item of store.pendingFor(conv.id)) desired.push(pendingElement(item));
    // Move only what changed, so focus and selection inside unchanged messages survive.
    let cursor = list.firstChild;
    for (const element of desired) {
      if (element === cursor) cursor = cursor.nextSibling;
      else list.insertBefore(element, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      rendered.delete(cursor.dataset.key);
      cursor.remove();
      cursor = next;
    }
    if (!conv.historyLoaded) historyStatus.textContent = "Loading messages…";
    else if (conv.reachedStart) historyStatus.textContent = messages.length ? "This is the beginning of the conversation." : "No messages yet. Say hello!";
    else historyStatus.textContent = "";
    if (stick) scroller.scrollTop = scroller.scrollHeight;
    else if (loadingOlder) scroller.scrollTop = previousTop + (scroller.scrollHeight - previousHeight);
    markReadSoon();
  }

  async function loadOlder() {
    if (loadingOlder || conv.reachedStart || !conv.historyLoaded) return;
    loadingOlder = true;
    historyStatus.textContent = "Loading older messages…";
    try {
      await store.loadHistory(conv.id, { older: true });
    } catch (error) {
      historyStatus.textContent = "Could not load older messages.";
    } finally {
      loadingOlder = false;
    }
    fillViewport();
  }

  // Keep loading until the history overflows the screen (or starts), so scrolling works.
  function fillViewport() {
    if (!conv.reachedStart && scroller.scrollHeight <= scroller.clientHeight + NEAR_TOP_PX) loadOlder();
  }

  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < NEAR_TOP_PX) loadOlder();
    if (atBottom()) markReadSoon();
  });

  async function fetchFull(id) {
    try {
      const reply = await store.socket.request({ type: "fetch", message_ids: [id] });
      store.applyFetched(reply.messages);
    } catch (error) {
      toast(error.message || "Could not load the message.");
    }
  }

  // --- reading ----------------------------------------------------------------------------

  let readTimer = null;
  function markReadSoon() {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      if (document.visibilityState === "visible") store.markRead(conv.id);
    }, 150);
  }
  const onVisible = () => markReadSoon();
  document.addEventListener("visibilitychange", onVisible);
  window.addEventListener("focus", onVisible);

  // --- composing --------------------------------------------------------------------------

  function codePoints(text) {
    // UTF-16 length is an upper bound; count exactly only near the limit.
    return text.length < COUNTER_FROM ? text.length : [...text].length;
  }

  function updateComposer() {
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
    const length = codePoints(textarea.value);
    const over = length > MAX_TEXT_LENGTH;
    counter.hidden = length < COUNTER_FROM;
    counter.textContent = over
      ? `${(length - MAX_TEXT_LENGTH).toLocaleString()} too many`
      : `${(MAX_TEXT_LENGTH - length).toLocaleString()} left`;
    counter.classList.toggle("over", over);
    sendButton.disabled = over || !textarea.value.trim();
  }

  function submit() {
    const text = textarea.value;
    if (!text.trim() || codePoints(text) > MAX_TEXT_LENGTH) return;
    if (editing) {
      const { id } = editing;
      stopEditing();
      store.socket.request({ type: "edit", message_id: id, text })
        .catch((error) => toast(`Could not edit: ${error.message}`));
      return;
    }
    store.send(conv.id, text);
    textarea.value = "";
    updateComposer();
    scroller.scrollTop = scroller.scrollHeight;
    hooks.stoppedTyping(conv.id);
  }

  function startEditing(message) {
    if (!store.socket.live) {
      toast("You are offline; edit when the connection is back.");
      return;
    }
    editing = { id: message.id };
    editBanner.hidden = false;
    textarea.value = message.text;
    updateComposer();
    textarea.focus();
  }

  function stopEditing() {
    editing = null;
    editBanner.hidden = true;
    textarea.value = "";
    updateComposer();
  }

  async function deleteMessage(message) {
    if (!(await confirmDialog("Delete this message for everyone?", "Delete"))) return;
    try {
      await store.socket.request({ type: "delete", message_id: message.id });
    } catch (error) {
      toast(`Could not delete: ${error.message}`);
    }
  }

  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape" && editing) {
      stopEditing();
    }
  });
  textarea.addEventListener("input", () => {
    updateComposer();
    if (textarea.value) hooks.typing(conv.id);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });

  // --- wiring -----------------------------------------------------------------------------

  const onMessages = (event) => {
    if (event.detail === conv.id) renderMessages();
  };
  const onMembers = (event) => {
    if (event.detail === conv.id) {
      renderHeader();
      renderMessages();
    }
  };
  const onConversations = () => {
    renderHeader();
    if (conv.left) hooks.left(conv.id);
  };
  const onPresence = () => renderHeader();
  const onTyping = (event) => {
    if (event.detail === conv.id) typingLine.textContent = hooks.typingText(conv.id);
  };
  // One list for subscribing and for unsubscribing when the view closes.
  const storeListeners = [
    ["messages", onMessages],
    ["members", onMembers],
    ["receipts", onMessages],
    ["conversations", onConversations],
    ["presence", onPresence],
    ["typing", onTyping],
  ];
  for (const [type, listener] of storeListeners) store.addEventListener(type, listener);

  // What was typed but not sent stays with the conversation while the tab is open.
  textarea.value = store.drafts.get(conv.id) || "";
  renderHeader();
  updateComposer();
  renderMessages();
  typingLine.textContent = hooks.typingText(conv.id);
  // Members' read and delivered positions (receipts are live-only, so always reload them).
  store.loadConversationDetail(conv.id)
    .then(() => conv.kind === "group" && hooks.loadPresence(conv.member_ids || []))
    .catch(() => null);
  const showNewest = () => {
    scroller.scrollTop = scroller.scrollHeight;
    fillViewport();
  };
  if (!conv.historyLoaded) {
    store.loadHistory(conv.id).then(showNewest)
      .catch(() => { historyStatus.textContent = "Could not load messages."; });
  } else {
    showNewest();
  }
  if (!matchMedia("(pointer: coarse)").matches) textarea.focus();

  return () => {
    if (!editing && textarea.value) store.drafts.set(conv.id, textarea.value);
    else store.drafts.delete(conv.id);
    store.openConversationId = null;
    clearTimeout(readTimer);
    // Leaving right after a message arrived still counts as having seen it.
    if (document.visibilityState === "visible") store.markRead(conv.id);
    document.removeEventListener("visibilitychange", onVisible);
    window.removeEventListener("focus", onVisible);
    for (const [type, listener] of storeListeners) store.removeEventListener(type, listener);
  };
}
