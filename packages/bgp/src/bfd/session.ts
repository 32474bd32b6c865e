// One single-hop BFD session over UDP (RFC 5881): control packets to the peer's port 3784 from a source port in
// 49152..65535 with TTL 255, received on this address's port 3784. One session per local address (the
// receiving socket is the session's own). Not checked: the received TTL (Node cannot read IP_RECVTTL), so
// RFC 5881's GTSM check is missing.
import { createSocket, type Socket } from "node:dgram";
import { EventEmitter } from "node:events";
import { isIPv4 } from "node:net";
import { type BfdConfig, type BfdSessionState, bfdStep, initialBfdState, packetToSend } from "./fsm.ts";
import { BFD_CONTROL_PORT, type BfdState, decodeBfd, encodeBfd } from "./packet.ts";

export type BfdSessionOptions = Omit<BfdConfig, "myDiscriminator"> & {
  peerAddress: string;
  localAddress: string;
  /** Nonzero, unique per session on this system (RFC 5880 §6.3); random by default. */
  myDiscriminator?: number;
  /** Test hook: the port both ends use (3784). */
  port?: number;
};

export type BfdSessionEvents = {
  /** peerRestarted: the peer's new session said Down (it lost its state; the path is alive). */
  state: [{ from: BfdState; to: BfdState; diagnostic: number; peerRestarted?: true }];
  discarded: [{ reason: string }];
};

export class BfdSession extends EventEmitter<BfdSessionEvents> {
  private readonly config: BfdConfig;
  private state: BfdSessionState = initialBfdState();
  private receiver: Socket | undefined;
  private sender: Socket | undefined;
  private txTimer: NodeJS.Timeout | undefined;
  private detectionTimer: NodeJS.Timeout | undefined;
  private txIntervalMs = 0;
  private lastSend: Promise<void> = Promise.resolve();
  private readonly options: BfdSessionOptions;

  constructor(options: BfdSessionOptions) {
    super();
    this.options = options;
    this.config = {
      myDiscriminator: options.myDiscriminator ?? 1 + Math.floor(Math.random() * 0xfffffffe),
      desiredMinTxMs: options.desiredMinTxMs,
      requiredMinRxMs: options.requiredMinRxMs,
      detectMultiplier: options.detectMultiplier,
      passive: options.passive,
    };
  }

  get sessionState(): BfdState {
    return this.state.state;
  }

  async start(): Promise<void> {
    const type = isIPv4(this.options.localAddress) ? "udp4" : "udp6";
    const receiver = createSocket({ type });
    receiver.on("message", (message, remote) => {
      if (remote.address !== this.options.peerAddress) return;
      const decoded = decodeBfd(message);
      if (!decoded.ok) {
        this.emit("discarded", { reason: decoded.reason });
        return;
      }
      this.apply({ type: "received", packet: decoded.packet });
    });
    receiver.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      receiver.once("error", reject);
      receiver.bind(this.options.port ?? BFD_CONTROL_PORT, this.options.localAddress, () => resolve());
    });
    const sender = createSocket({ type });
    sender.on("error", () => {});
    await new Promise<void>((resolve) => sender.bind(49152 + Math.floor(Math.random() * 16384), this.options.localAddress, () => resolve()));
    sender.setTTL(255);
    this.receiver = receiver;
    this.sender = sender;
    this.apply({ type: "admin", down: false });
  }

  /** Tells the peer AdminDown (so it goes down at once instead of after its detection time), then closes. */
  async stop(): Promise<void> {
    this.apply({ type: "admin", down: true });
    await this.lastSend;
    clearTimeout(this.txTimer);
    clearTimeout(this.detectionTimer);
    await Promise.all([this.receiver, this.sender].map((s) => (s ? new Promise<void>((r) => s.close(() => r())) : undefined)));
    this.receiver = undefined;
    this.sender = undefined;
  }

  private apply(event: Parameters<typeof bfdStep>[2]): void {
    const { state, actions } = bfdStep(this.config, this.state, event);
    this.state = state;
    if (actions.sendNow) this.send();
    if (actions.txIntervalMs !== this.txIntervalMs || !this.txTimer) {
      this.txIntervalMs = actions.txIntervalMs;
      this.scheduleTx();
    }
    if (event.type === "received" || actions.detectionMs === 0 || actions.transition) {
      clearTimeout(this.detectionTimer);
      this.detectionTimer = actions.detectionMs > 0 ? setTimeout(() => this.detectionExpired(), actions.detectionMs) : undefined;
    }
    if (actions.transition) this.emit("state", actions.transition);
  }

  /**
   * After the event loop was blocked, Node runs due timers before it reads the sockets: the peer's packets that
   * arrived meanwhile are still unread when the detection timer fires. setImmediate runs after the poll phase, so
   * they are read (and reset the timer) first; only a detection time without any packet takes the session down.
   */
  private detectionExpired(): void {
    const timer = this.detectionTimer;
    setImmediate(() => {
      if (this.detectionTimer === timer) this.apply({ type: "detection-timeout" });
    });
  }

  private scheduleTx(): void {
    clearTimeout(this.txTimer);
    this.txTimer = undefined;
    if (this.txIntervalMs === 0) return;
    // RFC 5880 §6.8.7: jitter to 75–100 % of the interval (75–90 % with a multiplier of 1).
    const jitter = 0.75 + Math.random() * (this.config.detectMultiplier === 1 ? 0.15 : 0.25);
    this.txTimer = setTimeout(() => {
      this.send();
      this.txTimer = undefined;
      this.scheduleTx();
    }, this.txIntervalMs * jitter);
  }

  private send(): void {
    const packet = packetToSend(this.config, this.state);
    this.state = { ...this.state, answerFinal: false };
    const sender = this.sender;
    if (!sender) return;
    this.lastSend = new Promise((resolve) => sender.send(encodeBfd(packet), this.options.port ?? BFD_CONTROL_PORT, this.options.peerAddress, () => resolve()));
  }
}
