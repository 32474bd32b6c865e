// One BGP session over TCP (node:net): the shell around the pure FSM and codec. It dials the peer (or accepts
// its connection when passive), runs the timers the FSM asks for, keeps what it has announced (Adj-RIB-Out) and
// what the peer announced (Adj-RIB-In), and turns a desired table of routes into UPDATEs.
import { EventEmitter } from "node:events";
import { isIPv4, Socket } from "node:net";
import { canonicalPrefix, type Prefix, parsePrefix } from "../message/address.ts";
import { Afi, Safi } from "../message/constants.ts";
import { decodeMessage } from "../message/decode.ts";
import { encodeMessage } from "../message/encode.ts";
import { BgpDecodeError, describeNotification } from "../message/errors.ts";
import { FrameReader } from "../message/frame.ts";
import { buildOpen, IPV4_UNICAST, IPV6_UNICAST, type Negotiated, negotiate } from "../message/open.ts";
import type { AfiSafi, Message, OpenMessage, PathAttributes, UpdateContext, UpdateMessage } from "../message/types.ts";
import { type FsmAction, type FsmEvent, type FsmState, initialState, type SessionState, step, type Timer } from "../fsm/fsm.ts";
import { endOfRib, planUpdates, type Route } from "./routes.ts";

export type SessionOptions = {
  peerAddress: string;
  peerPort?: number;
  localAsn: number;
  /** The peer's AS, or MetalLB's dynamicASN: "internal" (same as ours) or "external" (any other). */
  peerAsn: number | "internal" | "external";
  /** Our BGP Identifier (an IPv4 address). */
  routerId: string;
  /** Proposed hold time in seconds (default 90; BGPPeer holdTime). */
  holdTime?: number;
  /** Keepalive interval in seconds, if shorter than a third of the negotiated hold time (BGPPeer keepaliveTime). */
  keepaliveTime?: number;
  /** Seconds before reconnecting, doubled per failure up to maxBackoffSeconds (BGPPeer connectTime; default 5). */
  connectRetrySeconds?: number;
  maxBackoffSeconds?: number;
  /** Local address to connect from (BGPPeer sourceAddress). */
  sourceAddress?: string;
  /** Wait for the peer to connect (see accept) instead of dialling. */
  passive?: boolean;
  /** Families to offer (default IPv4 and IPv6 unicast, MetalLB's dual-stack sessions). */
  families?: AfiSafi[];
  /** Offer RFC 4724 graceful restart with this restart time; `restarting` after this speaker restarted. */
  gracefulRestart?: { restartTime: number; restarting: boolean };
  /**
   * Makes the unconnected socket to dial with: where options Node cannot set are applied before the SYN
   * (TCP_MD5SIG for RFC 2385 passwords, the IP TTL for eBGP single- or multi-hop), by a native addon that
   * creates the descriptor for `new Socket({fd})`. Default: a plain `new Socket()`.
   */
  createSocket?: (peerAddress: string) => Socket;
};

export type SessionEvents = {
  state: [{ from: SessionState; to: SessionState }];
  established: [Negotiated];
  down: [{ reason: string }];
  /** The peer's NOTIFICATION, or the one this side sent. */
  notification: [{ direction: "received" | "sent"; code: number; subcode: number; description: string }];
  /** A received UPDATE, after RFC 7606 handling (problems are listed in it). */
  update: [UpdateMessage];
  /** Routes that could not be announced to this peer, and why. */
  skipped: [{ prefix: Prefix; reason: string }[]];
  /** UPDATE messages sent (announcements, withdrawals and End-of-RIB). */
  sent: [{ updates: number }];
};

/** A BGP session to one peer; see SessionOptions. Start it, feed it routes, stop it. */
export class BgpSession extends EventEmitter<SessionEvents> {
  readonly options: Required<Pick<SessionOptions, "peerPort" | "holdTime" | "connectRetrySeconds" | "maxBackoffSeconds" | "passive" | "families">> & SessionOptions;
  private fsm: FsmState = initialState();
  private socket: Socket | undefined;
  private reader = new FrameReader();
  private timers = new Map<Timer, NodeJS.Timeout>();
  private localOpen: OpenMessage;
  private negotiated: Negotiated | undefined;
  private context: UpdateContext = { fourOctetAs: false, external: true };
  private desired = new Map<Prefix, Route>();
  /** What the peer has from us (Adj-RIB-Out), by prefix, as JSON of the route for change detection. */
  private advertised = new Map<Prefix, string>();
  /** What the peer announced to us (Adj-RIB-In). */
  readonly received = new Map<Prefix, PathAttributes>();
  private closed: Promise<void> = Promise.resolve();

  constructor(options: SessionOptions) {
    super();
    this.options = {
      peerPort: 179,
      holdTime: 90,
      connectRetrySeconds: 5,
      maxBackoffSeconds: 120,
      passive: false,
      families: [IPV4_UNICAST, IPV6_UNICAST],
      ...options,
    };
    const gracefulRestart = this.options.gracefulRestart
      ? { restartTime: this.options.gracefulRestart.restartTime, restarting: this.options.gracefulRestart.restarting, forwardingPreserved: true }
      : undefined;
    this.localOpen = buildOpen({
      asn: this.options.localAsn,
      routerId: this.options.routerId,
      holdTime: this.options.holdTime,
      families: this.options.families,
      ...(gracefulRestart ? { gracefulRestart } : {}),
    });
  }

  get state(): SessionState {
    return this.fsm.state;
  }

  /** What the OPEN exchange agreed, while the session is up. */
  get agreed(): Negotiated | undefined {
    return this.fsm.state === "Established" ? this.negotiated : undefined;
  }

  start(): void {
    this.dispatch({ type: "ManualStart" });
  }

  /** Prefixes the peer has from us now (Adj-RIB-Out). */
  get advertisedCount(): number {
    return this.advertised.size;
  }

  /** Prefixes wanted but not yet sent: the whole table while the session is not Established. */
  get pendingCount(): number {
    let pending = 0;
    for (const [prefix, route] of this.desired) if (this.advertised.get(prefix) !== JSON.stringify(route)) pending++;
    return pending + [...this.advertised.keys()].filter((p) => !this.desired.has(p)).length;
  }

  /**
   * Stops without a NOTIFICATION: the connection is just closed, as if this process had died, so a peer that
   * agreed to graceful restart (RFC 4724) keeps our routes, marked stale, until we are back and send End-of-RIB.
   * What a restarting speaker does on its way down; stop() is for taking the routes away.
   */
  async abandon(): Promise<void> {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    const from = this.fsm.state;
    const socket = this.socket;
    this.socket = undefined;
    this.fsm = initialState();
    socket?.destroy();
    await this.closed;
    if (from === "Established") {
      this.received.clear();
      this.advertised.clear();
      this.emit("down", { reason: "abandoned for a graceful restart" });
    }
    if (from !== "Idle") this.emit("state", { from, to: "Idle" });
  }

  /** Sends Cease (Administrative Shutdown) if a session is up, closes the connection, and stops retrying. */
  async stop(): Promise<void> {
    this.dispatch({ type: "ManualStop" });
    await this.closed;
  }

  /**
   * The whole table this speaker wants the peer to have; sent as the difference once Established. Prefixes are
   * taken in canonical form; one that is not a prefix is left out and reported in a `skipped` event.
   */
  setRoutes(routes: Route[]): void {
    const desired = new Map<Prefix, Route>();
    const invalid: { prefix: Prefix; reason: string }[] = [];
    for (const route of routes) {
      try {
        const prefix = canonicalPrefix(route.prefix);
        desired.set(prefix, { ...route, prefix });
      } catch (err) {
        invalid.push({ prefix: route.prefix, reason: (err as Error).message });
      }
    }
    this.desired = desired;
    if (invalid.length > 0) this.emit("skipped", invalid);
    if (this.fsm.state === "Established") this.sync();
  }

  /** Hands the session a connection the peer opened (a passive session's only way in). */
  accept(socket: Socket): void {
    if (this.socket || this.fsm.state === "Idle") {
      // One connection per session: collision detection between two live connections is not implemented, so
      // a second one is refused (Cease, Connection Rejected) and the first carries on.
      socket.end(encodeMessage({ type: "notification", code: 6, subcode: 5, data: new Uint8Array(0) }, this.context));
      return;
    }
    this.adopt(socket);
    this.dispatch({ type: "TcpAccepted" });
  }

  private dispatch(event: FsmEvent): void {
    const from = this.fsm.state;
    const { state, actions } = step(
      { passive: this.options.passive, connectRetrySeconds: this.options.connectRetrySeconds, maxBackoffSeconds: this.options.maxBackoffSeconds },
      this.fsm,
      event,
      this.negotiated ?? { holdTime: 0, keepaliveTime: 0 },
    );
    this.fsm = state;
    for (const action of actions) this.run(action);
    if (state.state !== from) this.emit("state", { from, to: state.state });
  }

  private run(action: FsmAction): void {
    switch (action.type) {
      case "connect":
        this.dial();
        return;
      case "drop-connection":
        this.drop();
        return;
      case "send-open":
        this.send(this.localOpen);
        return;
      case "send-keepalive":
        this.send({ type: "keepalive" });
        return;
      case "send-notification":
        this.send({ type: "notification", code: action.code, subcode: action.subcode, data: action.data ?? new Uint8Array(0) });
        this.emit("notification", { direction: "sent", code: action.code, subcode: action.subcode, description: describeNotification(action.code, action.subcode) });
        return;
      case "start-timer": {
        this.stopTimer(action.timer);
        // RFC 4271 §10: jitter the timers a speaker chooses, so peers do not fall into step.
        const jitter = action.timer === "hold" ? 1 : 0.75 + Math.random() * 0.25;
        const timer = action.timer;
        this.timers.set(timer, setTimeout(() => {
          this.timers.delete(timer);
          this.dispatch({ type: "TimerExpired", timer });
        }, action.seconds * 1000 * jitter));
        return;
      }
      case "stop-timer":
        this.stopTimer(action.timer);
        return;
      case "established":
        this.advertised.clear();
        this.sync();
        for (const family of this.negotiated?.families ?? []) this.send(endOfRib(family));
        this.emit("sent", { updates: this.negotiated?.families.length ?? 0 });
        this.emit("established", this.negotiated as Negotiated);
        return;
      case "session-down":
        this.received.clear();
        this.advertised.clear();
        this.emit("down", { reason: "session ended" });
        return;
    }
  }

  private stopTimer(timer: Timer) {
    const t = this.timers.get(timer);
    if (t) clearTimeout(t);
    this.timers.delete(timer);
  }

  private dial(): void {
    const socket = this.options.createSocket?.(this.options.peerAddress) ?? new Socket();
    this.adopt(socket);
    socket.connect({
      host: this.options.peerAddress,
      port: this.options.peerPort,
      family: isIPv4(this.options.peerAddress) ? 4 : 6,
      ...(this.options.sourceAddress ? { localAddress: this.options.sourceAddress } : {}),
    });
    socket.once("connect", () => {
      if (this.socket === socket) this.dispatch({ type: "TcpConnected" });
    });
  }

  private adopt(socket: Socket): void {
    this.socket = socket;
    this.reader = new FrameReader();
    this.context = { fourOctetAs: false, external: this.options.peerAsn !== "internal" && this.options.peerAsn !== this.options.localAsn };
    socket.setNoDelay(true);
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (chunk: Buffer) => {
      if (this.socket !== socket) return;
      this.receive(chunk);
    });
    socket.on("error", () => {}); // reported by "close"
    socket.once("close", () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.dispatch({ type: "TcpConnectionFails" });
    });
  }

  private drop(): void {
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return;
    // end() flushes a NOTIFICATION written just before; destroy() if the peer does not close within a second.
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private send(message: Message): void {
    this.socket?.write(encodeMessage(message, this.context));
  }

  private receive(chunk: Buffer): void {
    let frames: Uint8Array[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof BgpDecodeError)) throw err;
      this.dispatch({ type: "MessageError", code: err.code, subcode: err.subcode, data: err.data });
      return;
    }
    for (const frame of frames) {
      if (!this.socket) return; // an earlier frame ended the session
      let message: Message;
      try {
        message = decodeMessage(frame, this.context);
      } catch (err) {
        if (!(err instanceof BgpDecodeError)) throw err;
        this.dispatch({ type: "MessageError", code: err.code, subcode: err.subcode, data: err.data });
        return;
      }
      this.handle(message);
    }
  }

  private handle(message: Message): void {
    switch (message.type) {
      case "open": {
        if (this.fsm.state !== "OpenSent") {
          this.dispatch({ type: "OpenReceived", holdTime: 0, keepaliveTime: 0 }); // the FSM reports the error
          return;
        }
        try {
          this.negotiated = negotiate(this.localOpen, message, {
            asn: this.options.peerAsn,
            localAsn: this.options.localAsn,
            localRouterId: this.options.routerId,
            ...(this.options.keepaliveTime ? { keepaliveTime: this.options.keepaliveTime } : {}),
          });
        } catch (err) {
          if (!(err instanceof BgpDecodeError)) throw err;
          this.dispatch({ type: "MessageError", code: err.code, subcode: err.subcode, data: err.data });
          return;
        }
        this.context = { fourOctetAs: this.negotiated.fourOctetAs, external: this.negotiated.peerAsn !== this.options.localAsn };
        this.dispatch({ type: "OpenReceived", holdTime: this.negotiated.holdTime, keepaliveTime: this.negotiated.keepaliveTime });
        return;
      }
      case "keepalive":
        this.dispatch({ type: "KeepaliveReceived" });
        return;
      case "notification":
        this.emit("notification", { direction: "received", code: message.code, subcode: message.subcode, description: describeNotification(message.code, message.subcode) });
        this.dispatch({ type: "NotificationReceived" });
        return;
      case "route-refresh":
        this.dispatch({ type: "RouteRefreshReceived" });
        if (this.fsm.state === "Established") this.resend(message);
        return;
      case "update":
        this.dispatch({ type: "UpdateReceived" });
        if (this.fsm.state === "Established") this.learn(message);
        return;
    }
  }

  /** Adj-RIB-In: what the peer announces, with RFC 7606's treat-as-withdraw applied. */
  private learn(update: UpdateMessage): void {
    const { mpReach, mpUnreach, ...shared } = update.attributes;
    for (const prefix of [...update.withdrawn, ...(mpUnreach?.withdrawn ?? [])]) this.received.delete(prefix);
    const announced = [...update.nlri, ...(mpReach?.nlri ?? [])];
    for (const prefix of announced) {
      if (update.treatAsWithdraw) this.received.delete(prefix);
      else this.received.set(prefix, parsePrefix(prefix).family === 4 ? shared : { ...shared, ...(mpReach ? { mpReach: { ...mpReach, nlri: [] } } : {}) });
    }
    this.emit("update", update);
  }

  private resend(request: { afi: number; safi: number }): void {
    const family = request.afi === Afi.ipv4 ? 4 : request.afi === Afi.ipv6 ? 6 : undefined;
    if (family === undefined || request.safi !== Safi.unicast) return;
    for (const prefix of [...this.advertised.keys()]) if (parsePrefix(prefix).family === family) this.advertised.delete(prefix);
    this.sync();
  }

  /** Sends the difference between the desired table and what the peer has. */
  private sync(): void {
    const negotiated = this.negotiated;
    const socket = this.socket;
    if (!negotiated || !socket) return;
    const announce: Route[] = [];
    for (const [prefix, route] of this.desired) {
      const key = JSON.stringify(route);
      if (this.advertised.get(prefix) !== key) announce.push(route);
    }
    const withdraw = [...this.advertised.keys()].filter((p) => !this.desired.has(p));
    if (announce.length === 0 && withdraw.length === 0) return;
    const local = socket.localAddress ?? "";
    const plan = planUpdates(announce, withdraw, {
      ...this.context,
      localAsn: this.options.localAsn,
      localAddresses: isIPv4(local.replace(/^::ffff:/, "")) ? { ipv4: local.replace(/^::ffff:/, "") } : { ipv6: local },
      families: negotiated.families,
    });
    const skipped = new Set(plan.skipped.map((s) => s.prefix));
    for (const update of plan.updates) this.send(update);
    for (const prefix of withdraw) this.advertised.delete(prefix);
    for (const route of announce) if (!skipped.has(route.prefix)) this.advertised.set(route.prefix, JSON.stringify(route));
    if (plan.skipped.length > 0) this.emit("skipped", plan.skipped);
    if (plan.updates.length > 0) {
      this.emit("sent", { updates: plan.updates.length });
      this.dispatch({ type: "UpdateSent" });
    }
  }
}
