// Screens other than the conversation: new chat, new group, conversation info, contacts,
// devices and settings. Each takes the main pane and returns a cleanup function.

import { api } from "./api.js";
import { h, clear, icon, avatar, fullTime, bdi, isolated } from "./dom.js";
import { idOf } from "./json.js";
import { confirmDialog, toast } from "./ui.js";

const MAX_GROUP_MEMBERS = 100;

function page(main, titleText, ...content) {
  clear(main, h("section", { class: "page", "aria-labelledby": "page-title" },
    h("header", { class: "pane-header" },
      h("a", { href: "#/", class: "icon-button back", "aria-label": "Back to conversations" }, icon("back")),
      h("h2", { id: "page-title" }, titleText)),
    h("div", { class: "connection", role: "status", hidden: true }),
    h("div", { class: "page-body" }, ...content)));
}

function errorText(error) {
  const fields = Object.values(error.fields || {}).flat();
  return fields.length ? fields.join(" ") : error.message;
}

function userRow(user, ...actions) {
  const name = user.display_name || user.username;
  return h("li", { class: "user-row" },
    avatar(name),
    h("span", { class: "user-names" }, h("span", { class: "user-name" }, bdi(name)), h("span", { class: "username" }, "@", bdi(user.username))),
    h("span", { class: "row-actions" }, ...actions));
}

// A search box over all users; `actions(user)` gives the buttons of each result.
function userSearch(store, { label, actions, exclude = () => false }) {
  const input = h("input", { type: "search", placeholder: "Name or username", autocomplete: "off", "aria-label": label });
  const results = h("ul", { class: "user-list", "aria-label": "Search results" });
  const status = h("p", { class: "hint", "aria-live": "polite" });
  let timer = null;
  let generation = 0;
  async function search() {
    const query = input.value.trim();
    const mine = ++generation;
    if (!query) {
      clear(results);
      status.textContent = "";
      return;
    }
    try {
      const page = await api.get(`users?search=${encodeURIComponent(query)}&limit=20`);
      if (mine !== generation) return; // a newer search has started
      const users = page.results.map((u) => ({ ...u, id: idOf(u.id) })).filter((u) => u.id !== store.me.id && !exclude(u));
      for (const user of users) store.users.set(user.id, user);
      clear(results, users.map((user) => userRow(user, ...actions(user))));
      status.textContent = users.length ? "" : "No one found.";
    } catch (error) {
      status.textContent = error.message;
    }
  }
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  return { element: h("div", { class: "user-search" }, h("label", { class: "field" }, label, input), status, results), refresh: search, input };
}

async function startDirect(store, userId) {
  try {
    const raw = await api.post("conversations", { kind: "direct", user_id: Number(userId) });
    const conv = store.upsertConversation(raw);
    await store.loadConversationDetail(conv.id);
    store.emit("conversations");
    location.hash = `#/c/${conv.id}`;
  } catch (error) {
    toast(errorText(error));
  }
}

async function loadContacts(store) {
  const contacts = await api.get("contacts");
  return contacts.map((c) => {
    const user = { ...c.user, id: idOf(c.user.id) };
    store.users.set(user.id, user);
    return user;
  });
}

// --- new chat ---------------------------------------------------------------------------------

export function newChatPage(main, store) {
  const contactList = h("ul", { class: "user-list", "aria-label": "Contacts" });
  const search = userSearch(store, {
    label: "Find people",
    actions: (user) => [h("button", { type: "button", class: "primary", onclick: () => startDirect(store, user.id) }, "Message")],
  });
  page(main, "New chat",
    search.element,
    h("p", {}, h("a", { href: "#/new-group" }, "Create a group instead")),
    h("h3", {}, "Contacts"), contactList);
  loadContacts(store).then((contacts) => {
    clear(contactList, contacts.length
      ? contacts.map((user) => userRow(user, h("button", { type: "button", class: "primary", onclick: () => startDirect(store, user.id) }, "Message")))
      : h("li", { class: "hint" }, "No contacts yet."));
  }).catch(() => null);
  search.input.focus();
  return () => {};
}

// --- new group --------------------------------------------------------------------------------

export function newGroupPage(main, store) {
  const chosen = new Map();
  const chips = h("ul", { class: "chips", "aria-label": "Chosen members" });
  const nameInput = h("input", { name: "name", required: true, maxlength: "100", autocomplete: "off" });
  const errorLine = h("p", { class: "form-error", role: "alert", hidden: true });
  const renderChips = () => {
    clear(chips, [...chosen.values()].map((user) =>
      h("li", { class: "chip" }, bdi(user.display_name || user.username),
        h("button", { type: "button", "aria-label": `Remove ${user.display_name || user.username}`, onclick: () => { chosen.delete(user.id); renderChips(); search.refresh(); } }, "×"))));
  };
  const search = userSearch(store, {
    label: "Add members",
    exclude: (user) => chosen.has(user.id),
    actions: (user) => [h("button", {
      type: "button",
      onclick: () => {
        if (chosen.size + 1 >= MAX_GROUP_MEMBERS) {
          toast(`A group has at most ${MAX_GROUP_MEMBERS} members.`);
          return;
        }
        chosen.set(user.id, user);
        renderChips();
        search.refresh();
      },
    }, "Add")],
  });
  const form = h("form", { class: "stack" },
    h("label", { class: "field" }, "Group name", nameInput),
    search.element,
    h("h3", {}, "Members"), chips,
    errorLine,
    h("button", { type: "submit", class: "primary" }, "Create group"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorLine.hidden = true;
    try {
      const raw = await api.post("conversations", {
        kind: "group", name: nameInput.value, member_ids: [...chosen.keys()].map(Number),
      });
      const conv = store.upsertConversation(raw);
      await store.loadConversationDetail(conv.id);
      store.emit("conversations");
      location.hash = `#/c/${conv.id}`;
    } catch (error) {
      errorLine.textContent = errorText(error);
      errorLine.hidden = false;
    }
  });
  page(main, "New group", form);
  nameInput.focus();
  return () => {};
}

// --- conversation info ------------------------------------------------------------------------

export function infoPage(main, store, conversationId, hooks) {
  const conv = store.conversations.get(conversationId);
  if (!conv) {
    page(main, "Conversation", h("p", {}, "Conversation not found."));
    return () => {};
  }
  const body = h("div", { class: "stack" });
  const isAdmin = () => conv.role === "owner" || conv.role === "admin";

  // The member list is re-rendered as members change; the forms around it are built once
  // so that nothing the user is typing gets replaced under their fingers.
  const membersHeading = h("h3", {});
  const memberList = h("ul", { class: "user-list", "aria-label": "Members" });
  function renderMembers() {
    const members = conv.members ? [...conv.members.entries()] : [];
    membersHeading.textContent = `Members (${members.length} of ${MAX_GROUP_MEMBERS})`;
    clear(memberList, members.map(([userId, member]) => {
      const user = store.users.get(userId) || { id: userId, username: "…", display_name: "" };
      const canRemove = isAdmin() && userId !== store.me.id && member.role !== "owner";
      return userRow(user,
        member.role !== "member" ? h("span", { class: "role" }, member.role) : null,
        userId === store.me.id ? h("span", { class: "role" }, "you") : null,
        canRemove ? h("button", { type: "button", class: "danger", "aria-label": `Remove ${user.display_name || user.username}`, onclick: () => removeMember(userId) }, "Remove") : null);
    }));
  }

  let renderedRole = null;
  function render() {
    if (renderedRole === conv.role) {
      renderMembers();
      return;
    }
    renderedRole = conv.role;
    const parts = [];
    const muteBox = h("input", { type: "checkbox", checked: conv.muted });
    muteBox.addEventListener("change", async () => {
      try {
        store.upsertConversation(await api.patch(`conversations/${conv.id}`, { muted: muteBox.checked }));
        store.emit("conversations");
      } catch (error) {
        muteBox.checked = !muteBox.checked;
        toast(errorText(error));
      }
    });
    parts.push(h("label", { class: "switch" }, muteBox, " Mute notifications for this conversation"));

    if (conv.kind === "direct") {
      const peer = store.peerOf(conv);
      const user = peer && store.users.get(peer);
      if (user) {
        parts.push(h("ul", { class: "user-list" }, userRow(user,
          h("button", { type: "button", onclick: () => api.post("contacts", { user_id: Number(user.id) }).then(() => toast("Added to contacts.")).catch((e) => toast(errorText(e))) }, "Add to contacts"))));
      }
    } else {
      if (isAdmin()) {
        const nameInput = h("input", { value: conv.name, maxlength: "100", required: true, "aria-label": "Group name" });
        const renameForm = h("form", { class: "inline-form" }, nameInput, h("button", { type: "submit" }, "Rename"));
        renameForm.addEventListener("submit", async (event) => {
          event.preventDefault();
          try {
            store.upsertConversation(await api.patch(`conversations/${conv.id}`, { name: nameInput.value }));
            store.emit("conversations");
            toast("Group renamed.");
          } catch (error) {
            toast(errorText(error));
          }
        });
        parts.push(renameForm);
      } else {
        parts.push(h("p", { class: "group-name" }, bdi(conv.name)));
      }
      parts.push(membersHeading, memberList);
      renderMembers();
      if (isAdmin()) {
        parts.push(userSearch(store, {
          label: "Add members",
          exclude: (user) => conv.members && conv.members.has(user.id),
          actions: (user) => [h("button", { type: "button", onclick: () => addMember(user.id) }, "Add")],
        }).element);
      }
      parts.push(h("button", { type: "button", class: "danger", onclick: leave }, "Leave group"));
    }
    clear(body, parts);
  }

  async function removeMember(userId) {
    if (!(await confirmDialog(`Remove ${isolated(store.displayName(userId))} from the group?`, "Remove"))) return;
    try {
      await api.del(`conversations/${conv.id}/members/${userId}`);
      await store.loadConversationDetail(conv.id);
    } catch (error) {
      toast(errorText(error));
    }
  }

  async function addMember(userId) {
    try {
      store.upsertConversation(await api.post(`conversations/${conv.id}/members`, { user_ids: [Number(userId)] }));
      await store.loadConversationDetail(conv.id);
    } catch (error) {
      toast(errorText(error));
    }
  }

  async function leave() {
    if (!(await confirmDialog("Leave this group? You will stop receiving its messages.", "Leave"))) return;
    try {
      await api.del(`conversations/${conv.id}/members/${store.me.id}`);
      conv.left = true;
      store.emit("conversations");
      location.hash = "#/";
    } catch (error) {
      toast(errorText(error));
    }
  }

  page(main, conv.kind === "group" ? "Group info" : "Conversation info", body);
  const back = main.querySelector(".back");
  back.href = `#/c/${conv.id}`;
  back.setAttribute("aria-label", "Back to the conversation");
  back.classList.add("always");
  const onMembers = (event) => {
    if (event.detail === conv.id) render();
  };
  const onConversations = () => {
    if (conv.left) hooks.left(conv.id);
  };
  store.addEventListener("members", onMembers);
  store.addEventListener("conversations", onConversations);
  render();
  store.loadConversationDetail(conv.id).catch(() => null);
  return () => {
    store.removeEventListener("members", onMembers);
    store.removeEventListener("conversations", onConversations);
  };
}

// --- contacts ---------------------------------------------------------------------------------

export function contactsPage(main, store) {
  const list = h("ul", { class: "user-list", "aria-label": "Contacts" });
  let contactIds = new Set();
  async function refresh() {
    const contacts = await loadContacts(store);
    contactIds = new Set(contacts.map((c) => c.id));
    clear(list, contacts.length ? contacts.map((user) => userRow(user,
      h("button", { type: "button", class: "primary", onclick: () => startDirect(store, user.id) }, "Message"),
      h("button", { type: "button", "aria-label": `Remove ${user.display_name || user.username} from contacts`, onclick: async () => {
        try {
          await api.del(`contacts/${user.id}`);
          refresh();
        } catch (error) {
          toast(errorText(error));
        }
      } }, "Remove"))) : h("li", { class: "hint" }, "No contacts yet. Find people below."));
  }
  const search = userSearch(store, {
    label: "Add a contact",
    exclude: (user) => contactIds.has(user.id),
    actions: (user) => [h("button", { type: "button", onclick: async () => {
      try {
        await api.post("contacts", { user_id: Number(user.id) });
        await refresh();
        search.refresh();
      } catch (error) {
        toast(errorText(error));
      }
    } }, "Add")],
  });
  page(main, "Contacts", list, search.element);
  refresh().catch((error) => toast(error.message));
  return () => {};
}

// --- devices ----------------------------------------------------------------------------------

export function devicesPage(main, store) {
  const list = h("ul", { class: "device-list", "aria-label": "Devices" });
  async function refresh() {
    const devices = await api.get("devices");
    clear(list, devices.map((device) => h("li", { class: "device-row" },
      h("span", { class: "device-names" },
        h("span", { class: "user-name" }, bdi(device.name || "Unnamed device"), device.current ? h("span", { class: "role" }, "this browser") : null),
        h("span", { class: "username" }, `${device.platform} · last used ${fullTime(device.last_used_at)}`)),
      device.current
        ? null
        : h("button", { type: "button", class: "danger", "aria-label": `Log out ${device.name || "device"}`, onclick: async () => {
            if (!(await confirmDialog(`Log out ${isolated(device.name || "this device")}? It will need to log in again.`, "Log out"))) return;
            try {
              await api.del(`devices/${device.id}`);
              refresh();
            } catch (error) {
              toast(errorText(error));
            }
          } }, "Log out"))));
  }
  page(main, "Devices", h("p", { class: "hint" }, "Every browser and app you are logged in on."), list);
  refresh().catch((error) => toast(error.message));
  return () => {};
}

// --- settings ---------------------------------------------------------------------------------

export function settingsPage(main, store, hooks) {
  const nameInput = h("input", { id: "display-name", value: store.me.display_name || "", maxlength: "100" });
  const profile = h("form", { class: "inline-form" }, nameInput, h("button", { type: "submit" }, "Save"));
  profile.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const me = await api.patch("me", { display_name: nameInput.value });
      store.setMe({ ...store.me, ...me });
      store.emit("conversations");
      hooks.meChanged();
      toast("Saved.");
    } catch (error) {
      toast(errorText(error));
    }
  });

  const oldPassword = h("input", { type: "password", autocomplete: "current-password", required: true });
  const newPassword = h("input", { type: "password", autocomplete: "new-password", required: true });
  const passwordForm = h("form", { class: "stack" },
    h("label", { class: "field" }, "Current password", oldPassword),
    h("label", { class: "field" }, "New password", newPassword),
    h("p", { class: "hint" }, "Changing it logs out your other devices."),
    h("button", { type: "submit" }, "Change password"));
  passwordForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.post("auth/password", { old_password: oldPassword.value, new_password: newPassword.value });
      oldPassword.value = newPassword.value = "";
      toast("Password changed. Other devices were logged out.");
    } catch (error) {
      toast(errorText(error));
    }
  });

  page(main, "Settings",
    h("p", { class: "signed-in" }, "Signed in as ", h("strong", {}, `@${store.me.username}`)),
    h("h3", {}, "Profile"),
    h("div", { class: "field" }, h("label", { for: "display-name" }, "Display name"), profile),
    h("h3", {}, "Notifications and privacy"), hooks.notificationSettings(),
    h("h3", {}, "Account"),
    h("p", {}, h("a", { href: "#/devices" }, "Devices you are logged in on")),
    passwordForm,
    h("button", { type: "button", class: "danger", id: "logout", onclick: hooks.logout }, "Log out"));
  return () => {};
}
