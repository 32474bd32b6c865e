// Splits a TCP byte stream into whole BGP messages.
import { checkHeader } from "./decode.ts";
import { HEADER_LENGTH } from "./constants.ts";

/**
 * Collects chunks and hands out whole messages. A header error (bad marker, length or type) is thrown as
 * BgpDecodeError as soon as the 19 header octets are in, without waiting for a body that may never come.
 */
export class FrameReader {
  private buffer = new Uint8Array(0);

  push(chunk: Uint8Array): Uint8Array[] {
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer);
    joined.set(chunk, this.buffer.length);
    const frames: Uint8Array[] = [];
    let at = 0;
    while (joined.length - at >= HEADER_LENGTH) {
      const { length } = checkHeader(joined.subarray(at, at + HEADER_LENGTH));
      if (joined.length - at < length) break;
      frames.push(joined.slice(at, at + length));
      at += length;
    }
    this.buffer = joined.slice(at);
    return frames;
  }

  /** Octets received but not yet part of a whole message. */
  get pending(): number {
    return this.buffer.length;
  }
}
