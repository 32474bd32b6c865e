// A raw HTTP/2 client over TLS for sending what a well-behaved client never would (rapid resets, CONTINUATION
// floods, short bodies, stream floods) and seeing the server's frames as they come; and a well-behaved client
// (node:http2) to check that others are still served.
import { connect as connectH2 } from "node:http2";
import { connect, type TLSSocket } from "node:tls";

export const FRAME = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8, CONTINUATION: 0x9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const ERROR = { NO_ERROR: 0x0, PROTOCOL_ERROR: 0x1, REFUSED_STREAM: 0x7, CANCEL: 0x8, ENHANCE_YOUR_CALM: 0xb } as const;

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1), the first byte's high bits set to `high`. */
function hpackInt(value: number, prefixBits: number, high: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([high | value]);
  const out = [high | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

const hpackString = (s: string) => Buffer.concat([hpackInt(Buffer.byteLength(s), 7, 0), Buffer.from(s, "latin1")]);

/** A header block of literal fields without indexing and without Huffman: the simplest valid HPACK. */
export function headerBlock(fields: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0x00]), hpackString(name), hpackString(value)]));
}

export const requestFields = (method: string, path: string, authority: string, extra: readonly (readonly [string, string])[] = []): [string, string][] => [
  [":method", method],
  [":scheme", "https"],
  [":path", path],
  [":authority", authority],
  ...extra.map(([n, v]) => [n, v] as [string, string]),
];

export const headers = (stream: number, fields: readonly (readonly [string, string])[], endStream: boolean) =>
  frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), stream, headerBlock(fields));

export const rstStream = (stream: number, code: number) => {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, stream, p);
};

export const data = (stream: number, bytes: Buffer, endStream: boolean) => frame(FRAME.DATA, endStream ? FLAG.END_STREAM : 0, stream, bytes);

export interface RawH2 {
  socket: TLSSocket;
  frames: Frame[];
  /** resolves when the server closed the connection */
  closed: Promise<void>;
  isClosed(): boolean;
  send(...frames: Buffer[]): boolean;
  /** Waits until `test` holds for the frames so far (or the connection closes, or `ms` pass). */
  waitFor(test: (frames: Frame[]) => boolean, ms: number): Promise<boolean>;
  /** RST_STREAM error codes received, by stream */
  resets(): Map<number, number>;
  goaway(): { lastStream: number; code: number } | null;
  close(): void;
}

/** Connects with ALPN h2, sends the preface and empty SETTINGS, ACKs the server's SETTINGS. */
export function openRawH2(port: number, servername = "foo.test"): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", servername, ALPNProtocols: ["h2"], rejectUnauthorized: false });
    const frames: Frame[] = [];
    let buffered = Buffer.alloc(0);
    let closed = false;
    const watchers = new Set<() => void>();
    const notify = () => {
      for (const w of watchers) w();
    };
    const closedPromise = new Promise<void>((done) =>
      socket.once("close", () => {
        closed = true;
        notify();
        done();
      }),
    );
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        const f: Frame = { type: buffered[3] as number, flags: buffered[4] as number, stream: buffered.readUInt32BE(5) & 0x7fffffff, payload: buffered.subarray(9, 9 + length) };
        buffered = buffered.subarray(9 + length);
        frames.push(f);
        if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0 && !socket.destroyed) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      }
      notify();
    });
    socket.once("secureConnect", () => {
      if (socket.alpnProtocol !== "h2") {
        reject(new Error(`ALPN chose ${socket.alpnProtocol}, not h2`));
        socket.destroy();
        return;
      }
      // A large connection window, so DATA is never what holds a test back.
      const windowUpdate = Buffer.alloc(4);
      windowUpdate.writeUInt32BE(1 << 30);
      socket.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(FRAME.SETTINGS, 0, 0), frame(FRAME.WINDOW_UPDATE, 0, 0, windowUpdate)]));
      const raw: RawH2 = {
        socket,
        frames,
        closed: closedPromise,
        isClosed: () => closed,
        send: (...fs) => (socket.destroyed ? false : socket.write(Buffer.concat(fs))),
        waitFor: (test, ms) =>
          new Promise((done) => {
            const check = () => {
              if (test(frames) || closed) finish(test(frames));
            };
            const timer = setTimeout(() => finish(test(frames)), ms);
            const finish = (ok: boolean) => {
              clearTimeout(timer);
              watchers.delete(check);
              done(ok);
            };
            watchers.add(check);
            check();
          }),
        resets() {
          const out = new Map<number, number>();
          for (const f of frames) if (f.type === FRAME.RST_STREAM) out.set(f.stream, f.payload.readUInt32BE(0));
          return out;
        },
        goaway() {
          const f = frames.find((x) => x.type === FRAME.GOAWAY);
          return f === undefined ? null : { lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
        },
        close: () => socket.destroy(),
      };
      // The server's SETTINGS (its stream limit among them) come first; wait for them before any request.
      void raw.waitFor((fs) => fs.some((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0), 5_000).then(() => resolve(raw));
    });
    socket.once("error", reject);
  });
}

/** One GET from a well-behaved client (node:http2) on a connection of its own: the status it got. */
export function wellBehavedStatus(port: number, request: { authority: string; path: string; headers?: Record<string, string> }): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = connectH2(`https://127.0.0.1:${port}`, { servername: request.authority, rejectUnauthorized: false });
    session.on("error", reject);
    const stream = session.request({ ":path": request.path, ":authority": request.authority, ...request.headers });
    stream.on("response", (h) => {
      stream.resume();
      stream.on("end", () => {
        session.close();
        resolve(Number(h[":status"]));
      });
    });
    stream.on("error", reject);
  });
}
