// One WebSocket per tab, speaking docs/protocol.md: hello → sync pages from our cursor →
// live. Frames with a `seq` are our stream: each is applied once (seq <= cursor is a
// repeat and ignored) and then the cursor moves. On any unexpected close it reconnects
// with exponential backoff and jitter and syncs again from the cursor, so nothing is lost
// or doubled. The network going away (the browser's `offline` event) closes the socket at
// once rather than waiting for a heartbeat to time out.
//
// Where to connect: the server GET /api/v1/chat-servers/best names (the least loaded one,
// docs/protocol.md), else /ws/ on the page's own host (the load balancer). A suggested
// server that closes before `hello` (unreachable, or refusing this page's origin) is not
// asked for again for a while. A server that is shutting down closes with 4012: the tab
// reconnects at once, elsewhere, without the backoff.

import { parseJSON } from "./json.js";
import { currentToken } from "./accounts.js";
import { api } from "./api.js";

const CLOSE_NOT_AUTHENTICATED = 4001;
const CLOSE_REVOKED = 4002;
const CLOSE_ORIGIN_NOT_ALLOWED = 4003;
const CLOSE_SERVER_DRAINING = 4012;
const DRAINED_RECONNECT_MAX_MS = 1000; // spread, so a drained server's tabs do not all land at once
const DISCOVERY_TIMEOUT_MS = 3000;
const SUGGESTION_FAILED_PAUSE_MS = 5 * 60 * 1000;
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 60000;
const PONG_TIMEOUT_MS = 10000;
const ACK_EVERY_MS = 1000;
const SYNC_PAGE_LIMIT = 200;

export class ChatSocket {
  // handlers: onState(state, detail), onHello(hello, isFirst) -> Promise, onReset() -> Promise,
  // onEvent(event),
  // onFrame(frame) for frames outside the stream, onLive(), onAuthLost(code)
  constructor(handlers) {
    this.handlers = handlers;
    this.ws = null;
    this.cursor = null; // null until the first hello of this tab
    this.state = "connecting";
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.ackTimer = null;
    this.ackedSeq = 0;
    this.heartbeatMs = 25000;
    this.lastSentAt = 0;
    this.stopped = false;
    this.refCounter = 0;
    this.waiting = new Map(); // ref -> {resolve, reject}
    this.opening = 0; // bumped by every open(): an older one still asking where to go gives up
    this.onSuggested = false; // the current socket goes to a suggested server, not the page's host
    this.sawHello = false;
    this.suggestionsPausedUntil = 0;
    window.addEventListener("offline", () => this.dropForOffline());
    window.addEventListener("online", () => this.reconnectNow());
  }

  setState(state, detail = {}) {
    this.state = state;
    this.handlers.onState(state, detail);
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.teardown();
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  async open() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    if (!navigator.onLine) {
      this.setState("offline");
      return;
    }
    this.setState(this.attempt === 0 && this.cursor === null ? "connecting" : "reconnecting");
    const opening = ++this.opening;
    const { url, suggested } = await this.socketUrl();
    if (opening !== this.opening || this.stopped || this.ws || !navigator.onLine) return;
    // Browsers cannot set headers on a WebSocket: the token goes in the query string.
    const token = encodeURIComponent(currentToken() || "");
    let ws;
    try {
      ws = new WebSocket(`${url}?access_token=${token}`);
    } catch {
      // Refused by the page itself (its CSP does not list that origin, WEB_SOCKET_ORIGINS).
      this.suggestionsPausedUntil = Date.now() + SUGGESTION_FAILED_PAUSE_MS;
      if (suggested) this.open();
      else this.scheduleRetry();
      return;
    }
    this.ws = ws;
    this.onSuggested = suggested;
    this.sawHello = false;
    ws.onmessage = (event) => {
      if (ws === this.ws) this.receive(parseJSON(event.data));
    };
    ws.onclose = (event) => {
      if (ws === this.ws) this.closed(event.code);
    };
    // A connection the page's CSP blocks fires `error` and never `close` (Chromium): count
    // it as closed. On other failures `close` follows and finds this socket already gone.
    ws.onerror = () => {
      if (ws === this.ws && ws.readyState === WebSocket.CLOSED) this.closed(1006);
    };
  }

  // The server to connect to: the registry's suggestion, or the page's own host.
  async socketUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const own = `${scheme}://${location.host}/ws/`;
    if (Date.now() < this.suggestionsPausedUntil) return { url: own, suggested: false };
    try {
      const answer = await Promise.race([
        api.get("chat-servers/best", { quiet401: true }),
        new Promise((resolve) => setTimeout(() => resolve(null), DISCOVERY_TIMEOUT_MS)),
      ]);
      if (answer && answer.server_id && answer.ws_url && answer.ws_url !== own) {
        return { url: answer.ws_url, suggested: true };
      }
    } catch {
      // No answer: the load balancer's URL will do.
    }
    return { url: own, suggested: false };
  }

  teardown() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
    for (const { reject } of this.waiting.values()) reject(new Error("connection lost"));
    this.waiting.clear();
  }

  closed(code) {
    this.teardown();
    this.ws = null;
    if (this.stopped) return;
    if (this.onSuggested && !this.sawHello) {
      // The suggested server did not take us (down, or not accepting this page's origin):
      // the page's own host, now, and no suggestions for a while.
      this.suggestionsPausedUntil = Date.now() + SUGGESTION_FAILED_PAUSE_MS;
      this.open();
      return;
    }
    if (code === CLOSE_SERVER_DRAINING) {
      this.attempt = 0;
      this.setState("reconnecting");
      this.retryTimer = setTimeout(() => this.open(), Math.random() * DRAINED_RECONNECT_MAX_MS);
      return;
    }
    if (code === CLOSE_NOT_AUTHENTICATED || code === CLOSE_REVOKED) {
      // Retrying with the same session would be refused again: back to the log-in screen.
      this.stopped = true;
      this.setState("signed-out");
      this.handlers.onAuthLost(code);
      return;
    }
    if (code === CLOSE_ORIGIN_NOT_ALLOWED) {
      this.stopped = true;
      this.setState("refused", { message: "The server refused this page's origin (ALLOWED_HOSTS)." });
      return;
    }
    if (!navigator.onLine) {
      this.setState("offline");
      return;
    }
    this.scheduleRetry();
  }

  scheduleRetry() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    // Full jitter on the upper half: many clients dropped by one server restart must not
    // all come back in the same instant.
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    this.setState("waiting", { retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  dropForOffline() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = null;
    this.teardown();
    if (ws) ws.close(4000, "offline");
    this.setState("offline");
  }

  // Give up on the current socket without waiting for a close handshake that a dead
  // network would never complete, and reconnect with backoff.
  abandon() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(4000, "abandoned");
    this.closed(1006);
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    this.open();
  }

  // --- sending --------------------------------------------------------------------------

  get live() {
    return this.state === "live" && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  sendFrame(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    this.lastSentAt = Date.now();
    return true;
  }

  // Sends a frame with a fresh `ref` and resolves with the reply (ok, messages, sent),
  // or rejects with the error frame. Only while live.
  request(frame) {
    return new Promise((resolve, reject) => {
      const ref = `r${++this.refCounter}`;
      if (!this.live || !this.sendFrame({ ...frame, ref })) {
        reject(Object.assign(new Error("Not connected."), { code: "offline" }));
        return;
      }
      this.waiting.set(ref, { resolve, reject });
    });
  }

  // --- receiving ------------------------------------------------------------------------

  receive(frame) {
    if (frame.type === "hello") {
      this.sawHello = true;
      this.hello(frame);
      return;
    }
    if (frame.type === "sync.page") {
      this.page(frame);
      return;
    }
    if (frame.type === "pong") {
      clearTimeout(this.pongTimer);
      return;
    }
    if (frame.ref && this.waiting.has(frame.ref) && frame.type !== "sent") {
      const { resolve, reject } = this.waiting.get(frame.ref);
      this.waiting.delete(frame.ref);
      if (frame.type === "error") reject(Object.assign(new Error(frame.message), frame));
      else resolve(frame);
    }
    if (frame.type === "sent" && frame.duplicate) {
      // Acknowledges a retry: it repeats an old position; the cursor stays.
      this.handlers.onFrame(frame);
      return;
    }
    if (typeof frame.seq === "number") {
      this.streamEvent(frame);
      return;
    }
    this.handlers.onFrame(frame);
  }

  async hello(hello) {
    this.heartbeatMs = (hello.heartbeat_interval || 25) * 1000;
    const isFirst = this.cursor === null;
    this.setState("syncing");
    const ws = this.ws;
    try {
      // On the first hello the app loads its state over REST and starts the stream at
      // hello.last_seq: that state already includes every event up to there.
      await this.handlers.onHello(hello, isFirst);
    } catch (error) {
      console.warn("Loading state failed; reconnecting.", error);
      if (ws === this.ws) this.abandon();
      return;
    }
    if (ws !== this.ws) return;
    if (isFirst) {
      this.cursor = hello.last_seq;
      this.ackedSeq = hello.delivered_seq;
    }
    this.sendFrame({ type: "sync", after: this.cursor, limit: SYNC_PAGE_LIMIT });
  }

  async page(page) {
    if (page.reset) {
      // Our cursor is older than the queue the server keeps (docs/protocol.md, "Reset"):
      // reload over REST and go on from last_seq. The cursor moves first, so live events
      // arriving meanwhile are applied, not taken for a gap (which would reset again).
      this.cursor = Math.max(this.cursor, page.last_seq);
      const ws = this.ws;
      await this.handlers.onReset();
      if (ws !== this.ws) return;
    }
    for (const event of page.events) {
      if (event.seq > this.cursor) this.handlers.onEvent(event);
    }
    this.cursor = Math.max(this.cursor, page.last_seq);
    this.ack(true);
    if (page.has_more) {
      this.sendFrame({ type: "sync", after: this.cursor, limit: SYNC_PAGE_LIMIT });
      return;
    }
    const wasLive = this.state === "live";
    this.attempt = 0;
    this.setState("live");
    this.startHeartbeat();
    if (!wasLive) this.handlers.onLive();
  }

  streamEvent(event) {
    if (event.seq <= this.cursor) return; // already applied (e.g. from a sync page)
    if (event.seq > this.cursor + 1) {
      // A gap the server did not fill: ask for everything after our cursor instead.
      this.sendFrame({ type: "sync", after: this.cursor, limit: SYNC_PAGE_LIMIT });
      return;
    }
    this.handlers.onEvent(event);
    this.cursor = event.seq;
    this.ack(false);
  }

  ack(now) {
    if (this.cursor <= this.ackedSeq) return;
    if (now) {
      clearTimeout(this.ackTimer);
      this.ackTimer = null;
      this.ackedSeq = this.cursor;
      this.sendFrame({ type: "ack", seq: this.cursor });
      return;
    }
    // Batch acks while live: one per second is plenty for delivered receipts.
    if (this.ackTimer === null) {
      this.ackTimer = setTimeout(() => {
        this.ackTimer = null;
        this.ack(true);
      }, ACK_EVERY_MS);
    }
  }

  startHeartbeat() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastSentAt < this.heartbeatMs) return;
      if (!this.sendFrame({ type: "ping" })) return;
      clearTimeout(this.pongTimer);
      const ws = this.ws;
      this.pongTimer = setTimeout(() => {
        // No pong: the connection is dead even if the browser has not noticed yet.
        if (ws === this.ws) this.abandon();
      }, PONG_TIMEOUT_MS);
    }, 5000);
  }
}
