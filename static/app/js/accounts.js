// Which account this tab uses.
//
// Each tab holds its own log-in, so two windows of one browser can be two different
// people (the README's first steps sign up two users in two windows). The device tokens
// of the accounts logged in on this browser are remembered in localStorage; a tab records
// which one it uses in sessionStorage (kept across reloads of that tab), and a new tab
// offers to continue as one of them.

const ACCOUNTS_KEY = "chat.accounts";
const CURRENT_KEY = "chat.account";

export function savedAccounts() {
  try {
    const accounts = JSON.parse(localStorage.getItem(ACCOUNTS_KEY) || "[]");
    return Array.isArray(accounts) ? accounts : [];
  } catch {
    return [];
  }
}

function save(accounts) {
  localStorage.setItem(ACCOUNTS_KEY, JSON.stringify(accounts));
}

export function rememberAccount(token, user) {
  const id = String(user.id);
  const accounts = savedAccounts().filter((account) => account.user_id !== id);
  accounts.unshift({ user_id: id, username: user.username, display_name: user.display_name, token });
  save(accounts);
  sessionStorage.setItem(CURRENT_KEY, id);
}

export function useAccount(userId) {
  sessionStorage.setItem(CURRENT_KEY, String(userId));
}

function current() {
  const id = sessionStorage.getItem(CURRENT_KEY);
  return id ? savedAccounts().find((account) => account.user_id === id) || null : null;
}

export function currentToken() {
  const account = current();
  return account ? account.token : null;
}

// After log-out, or when the server says the token no longer works.
export function forgetCurrentAccount() {
  const id = sessionStorage.getItem(CURRENT_KEY);
  sessionStorage.removeItem(CURRENT_KEY);
  if (id) save(savedAccounts().filter((account) => account.user_id !== id));
}

export function updateCurrentAccount(user) {
  const id = String(user.id);
  save(savedAccounts().map((a) => (a.user_id === id ? { ...a, display_name: user.display_name } : a)));
}
