// Entry point: log-in screen or the app, routing between screens, and the wiring of the
// store (state), the socket (protocol) and the views.

import { api, ApiError, browserDeviceName, setUnauthenticatedHandler } from "./api.js";
import { h, clear, avatar, bdi } from "./dom.js";
import { Store } from "./store.js";
import { ChatSocket } from "./socket.js";
import { conversationPage } from "./conversation.js";
import { contactsPage, devicesPage, infoPage, newChatPage, newGroupPage, settingsPage } from "./pages.js";
import { renderConnection, renderConversationList, toast } from "./ui.js";
import { createExtras } from "./extras.js";
import { currentToken, forgetCurrentAccount, rememberAccount, savedAccounts, updateCurrentAccount, useAccount } from "./accounts.js";

const store = new Store();
let socket = null;
let extras = null;
let cleanup = () => {};
let currentRoute = null;
let firstLoadDone = false;

function registerServiceWorker() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((error) => {
      console.warn("Service worker registration failed", error);
    });
  }
}

// --- authentication -------------------------------------------------------------------------

function showAuth() {
  document.getElementById("loading").hidden = true;
  document.getElementById("shell").hidden = true;
  const auth = document.getElementById("auth");
  auth.hidden = false;
  renderAccountChooser();
  const tabs = { login: document.getElementById("tab-login"), signup: document.getElementById("tab-signup") };
  const forms = { login: document.getElementById("login-form"), signup: document.getElementById("signup-form") };
  const select = (name) => {
    for (const key of Object.keys(tabs)) {
      tabs[key].setAttribute("aria-selected", String(key === name));
      tabs[key].tabIndex = key === name ? 0 : -1;
      forms[key].hidden = key !== name;
    }
    forms[name].querySelector("input").focus();
  };
  tabs.login.onclick = () => select("login");
  tabs.signup.onclick = () => select("signup");
  for (const tab of Object.values(tabs)) {
    tab.onkeydown = (event) => {
      // Arrow keys move between tabs (WAI-ARIA tabs pattern).
      if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        const next = tab === tabs.login ? "signup" : "login";
        select(next);
        tabs[next].focus();
      }
    };
  }
  forms.login.onsubmit = (event) => submitAuth(event, "auth/login");
  forms.signup.onsubmit = (event) => submitAuth(event, "auth/signup");
  forms.login.querySelector("input").focus();
}

async function submitAuth(event, path) {
  event.preventDefault();
  const form = event.target;
  const errorLine = form.querySelector(".form-error");
  const button = form.querySelector("button[type=submit]");
  const values = Object.fromEntries(new FormData(form));
  errorLine.hidden = true;
  button.disabled = true;
  try {
    const result = await api.post(path, {
      ...values, device_name: browserDeviceName(), platform: "web",
    }, { quiet401: true });
    rememberAccount(result.token, result.user);
    document.getElementById("auth").hidden = true;
    form.reset();
    startSession(result.user);
  } catch (error) {
    const fields = Object.entries(error.fields || {}).map(([, problems]) => problems.join(" "));
    errorLine.textContent = fields.length ? fields.join(" ") : error.message;
    errorLine.hidden = false;
  } finally {
    button.disabled = false;
  }
}

// Accounts already logged in on this browser: a new window can continue as one of them.
function renderAccountChooser() {
  const accounts = savedAccounts();
  document.getElementById("account-chooser").hidden = accounts.length === 0;
  clear(document.getElementById("account-list"), accounts.map((account) => {
    const name = account.display_name || account.username;
    return h("li", {}, h("button", {
      type: "button",
      class: "account-button",
      onclick: () => {
        useAccount(account.user_id);
        document.getElementById("auth").hidden = true;
        loadSession();
      },
    }, avatar(name, { size: "small" }), h("span", {}, "Continue as ", bdi(name))));
  }));
}

function signedOut() {
  // The token no longer works (logged out, revoked, password changed elsewhere).
  forgetCurrentAccount();
  // Start from a clean page: no state of the previous user survives.
  if (socket) socket.stop();
  location.hash = "";
  location.reload();
}

async function logout() {
  try {
    await api.post("auth/logout", {}, { quiet401: true });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) {
      toast(error.message);
      return;
    }
  }
  localStorage.removeItem(store.outboxKey());
  signedOut();
}

// --- the app ----------------------------------------------------------------------------------

function renderMe() {
  const link = document.getElementById("me-link");
  const name = store.me.display_name || store.me.username;
  clear(link, avatar(name, { size: "small" }), h("span", {}, bdi(name)));
}

function startSession(me) {
  store.setMe(me);
  document.getElementById("loading").hidden = true;
  document.getElementById("shell").hidden = false;
  renderMe();
  extras = createExtras(store);
  socket = new ChatSocket({
    onState(state, detail) {
      store.connection = { state, detail };
      renderConnection(store);
    },
    async onHello(hello, isFirst) {
      if (!isFirst && hello.last_seq < socket.cursor) {
        // The server's queue is behind our cursor: its data was reset. Start over.
        location.reload();
        return;
      }
      if (isFirst) {
        await store.loadConversations();
        firstLoadDone = true;
        // Only a conversation screen waits for the first load ("Loading…"). Re-rendering
        // any other screen would throw away what the user typed there meanwhile.
        if ((currentRoute ?? "").split("/")[0] === "c") route(true);
        else renderList();
      }
    },
    async onReset() {
      // Away longer than the server keeps sync queues: what this tab shows may miss events.
      try {
        await store.reloadAfterReset();
      } catch (error) {
        console.warn("Reloading after a reset failed; starting over.", error);
        location.reload();
        return;
      }
      if ((currentRoute ?? "").split("/")[0] === "c") route(true);
      else renderList();
    },
    onEvent(event) {
      store.applyEvent(event);
    },
    onFrame(frame) {
      if (frame.type === "sent") store.acknowledgeSend(frame);
      else if (frame.type === "receipt") store.applyReceipt(frame);
      else if (frame.type === "messages" && !frame.ref) store.applyFetched(frame.messages);
      else if (frame.type === "error" && frame.ref && frame.ref.startsWith("s:")) store.sendFailed(frame);
      else if (frame.type === "error" && !frame.ref) console.warn("Server error frame", frame);
      else extras.handleFrame(frame);
    },
    onLive() {
      for (const conv of store.conversations.values()) conv.readSent = null;
      store.flushOutbox();
      // Receipts are not replayed after a reconnect: reload positions for the open one.
      if (store.openConversationId) {
        store.loadConversationDetail(store.openConversationId).catch(() => null);
        store.markRead(store.openConversationId);
      }
      extras.onLive();
    },
    onAuthLost() {
      signedOut();
    },
  });
  store.socket = socket;
  store.addEventListener("conversations", renderList);
  store.addEventListener("members", renderList);
  store.addEventListener("presence", renderList);
  document.getElementById("conversation-filter").addEventListener("input", renderList);
  socket.start();
  route(true);
}

function renderList() {
  renderConversationList(store, {
    filter: document.getElementById("conversation-filter").value,
    activeId: store.openConversationId,
  });
}

const hooks = {
  typing: (id) => extras.typing(id),
  stoppedTyping: (id) => extras.stoppedTyping(id),
  typingText: (id) => extras.typingText(id),
  left: () => {
    toast("You are no longer in that conversation.");
    location.hash = "#/";
  },
  logout,
  meChanged: () => {
    updateCurrentAccount(store.me);
    renderMe();
  },
  notificationSettings: () => extras.notificationSettings(),
  loadPresence: (userIds) => extras.loadPresence(userIds),
};

// Routes: #/ (list), #/c/<id>, #/c/<id>/info, #/new, #/new-group, #/contacts, #/devices, #/settings
function route(force = false) {
  if (!store.me) return;
  const hash = location.hash.replace(/^#\/?/, "");
  if (!force && hash === currentRoute) return;
  currentRoute = hash;
  cleanup();
  cleanup = () => {};
  store.openConversationId = null;
  const main = document.getElementById("main");
  const shell = document.getElementById("shell");
  const parts = hash.split("/").filter(Boolean);
  shell.dataset.screen = parts.length ? "main" : "list";
  if (!firstLoadDone && parts[0] === "c") {
    clear(main, h("p", { class: "placeholder" }, "Loading…"));
  } else if (parts[0] === "c" && parts[2] === "info") {
    cleanup = infoPage(main, store, parts[1], hooks);
  } else if (parts[0] === "c") {
    cleanup = conversationPage(main, store, parts[1], hooks);
  } else if (parts[0] === "new") {
    cleanup = newChatPage(main, store);
  } else if (parts[0] === "new-group") {
    cleanup = newGroupPage(main, store);
  } else if (parts[0] === "contacts") {
    cleanup = contactsPage(main, store);
  } else if (parts[0] === "devices") {
    cleanup = devicesPage(main, store);
  } else if (parts[0] === "settings") {
    cleanup = settingsPage(main, store, hooks);
  } else {
    clear(main, h("div", { class: "placeholder" }, h("p", {}, "Choose a conversation, or "), h("a", { href: "#/new" }, "start a new chat"), "."));
  }
  renderList();
  renderConnection(store);
  if (parts.length && matchMedia("(max-width: 720px)").matches) main.focus({ preventScroll: true });
}

let bootRetry = null;

async function loadSession() {
  clearTimeout(bootRetry);
  if (store.me) return;
  if (!currentToken()) {
    showAuth();
    return;
  }
  try {
    const me = await api.get("me", { quiet401: true });
    if (!store.me) startSession(me);
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      forgetCurrentAccount();
      showAuth();
      return;
    }
    // Offline at start (the page itself came from the service worker's cache): try again
    // when the browser says the network is back, and every few seconds in case it does not.
    document.getElementById("loading").textContent = "You are offline. Waiting for the connection…";
    bootRetry = setTimeout(loadSession, 3000);
  }
}

function boot() {
  registerServiceWorker();
  setUnauthenticatedHandler(() => {
    if (store.me) signedOut();
  });
  window.addEventListener("hashchange", () => route());
  window.addEventListener("online", () => {
    if (!store.me && document.getElementById("auth").hidden) loadSession();
  });
  loadSession();
}

boot();
