// Small DOM helpers. Everything user-provided goes in as text (textContent, attribute
// values), never as HTML: message text, names and group names cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// An icon from the SVG sprite in app.html; decorative (the control carries the label).
export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#i-${name}`);
  svg.append(use);
  return svg;
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A user-supplied string (name, username, group name, message text) as an isolated run:
// <bdi> takes its direction from its own first strong character and keeps bidi controls
// and right-to-left text inside it from reordering what is around it ("Read by <name>").
export function bdi(text) {
  return h("bdi", {}, text ?? "");
}

// The same for strings that end up as plain text (confirm dialogs, notifications, titles):
// wrapped in FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE.
export function isolated(text) {
  return `\u2068${text ?? ""}\u2069`;
}

// The host as it is shown for a link: the URL API gives international (IDN) hosts in
// punycode ("xn--..."), so a lookalike host (apple.com with a Cyrillic "a") cannot pass for
// apple.com. ASCII hosts are shown as typed.
function shownUrl(typed, parsed) {
  if (!parsed.hostname.split(".").some((label) => label.startsWith("xn--"))) return typed;
  const hostStart = typed.indexOf("//") + 2;
  const rest = typed.slice(hostStart).search(/[/?#]/);
  const tail = rest === -1 ? "" : typed.slice(hostStart + rest);
  return `${parsed.protocol}//${parsed.host}${tail}`;
}

// http(s) links in running text. Trailing punctuation usually ends the sentence, not the URL.
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;

// Message text as DOM nodes: plain text, with http(s) URLs turned into links that open in
// a new tab without giving that tab a handle on this one.
export function richText(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let url = match[0];
    const trailing = url.match(TRAILING);
    if (trailing) url = url.slice(0, -trailing[0].length);
    let parsed = null;
    try {
      parsed = new URL(url);
    } catch {
      parsed = null;
    }
    if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) continue;
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    const link = document.createElement("a");
    link.href = parsed.href;
    link.textContent = shownUrl(url, parsed);
    link.title = parsed.href;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    nodes.push(link);
    last = match.index + url.length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function shortTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const now = new Date();
  return date.toDateString() === now.toDateString()
    ? timeFormat.format(date)
    : dayFormat.format(date);
}

export function clockTime(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "";
}

export function fullTime(iso) {
  return iso ? fullFormat.format(new Date(iso)) : "";
}

export function dayLabel(iso) {
  const date = new Date(iso);
  const today = new Date();
  const yesterday = new Date(today);
  yesterday.setDate(today.getDate() - 1);
  if (date.toDateString() === today.toDateString()) return "Today";
  if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
  return new Intl.DateTimeFormat(undefined, { dateStyle: "full" }).format(date);
}

export function relativeTime(iso) {
  if (!iso) return "";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return shortTime(iso);
}

// Initials for an avatar circle; the colour comes from the name so it is stable.
export function avatar(name, { size = "" } = {}) {
  const words = (name || "?").trim().split(/\s+/);
  const initials = (words[0][0] + (words.length > 1 ? words[words.length - 1][0] : "")).toUpperCase();
  let hash = 0;
  for (const ch of name || "?") hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return h(
    "span",
    { class: `avatar ${size}`, "aria-hidden": "true", style: `--avatar-hue: ${hash % 360}` },
    initials,
  );
}

export function newClientMsgId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Plain-HTTP LAN addresses are not a secure context: randomUUID is missing there.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
