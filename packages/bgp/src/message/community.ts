// Communities as people write them in a BGPAdvertisement: "65535:65282" (RFC 1997) and "large:64500:1:2"
// (RFC 8092), MetalLB's notation.
import type { LargeCommunity } from "./types.ts";

export class CommunityParseError extends Error {
  override name = "CommunityParseError";
}

export type ParsedCommunity = { kind: "standard"; value: number } | { kind: "large"; value: LargeCommunity };

const part = (text: string, max: number, whole: string): number => {
  if (!/^\d+$/.test(text) || Number(text) > max) throw new CommunityParseError(`${JSON.stringify(whole)}: ${JSON.stringify(text)} is not a number from 0 to ${max}`);
  return Number(text);
};

export function parseCommunity(text: string): ParsedCommunity {
  const fields = text.split(":");
  if (fields[0] === "large") {
    if (fields.length !== 4) throw new CommunityParseError(`${JSON.stringify(text)}: a large community is large:GLOBAL:LOCAL1:LOCAL2`);
    return { kind: "large", value: [part(fields[1] as string, 0xffffffff, text), part(fields[2] as string, 0xffffffff, text), part(fields[3] as string, 0xffffffff, text)] };
  }
  if (fields.length !== 2) throw new CommunityParseError(`${JSON.stringify(text)}: a community is AS:VALUE or large:GLOBAL:LOCAL1:LOCAL2`);
  return { kind: "standard", value: part(fields[0] as string, 0xffff, text) * 0x10000 + part(fields[1] as string, 0xffff, text) };
}

export const formatCommunity = (value: number) => `${Math.floor(value / 0x10000)}:${value % 0x10000}`;
export const formatLargeCommunity = (value: LargeCommunity) => `large:${value.join(":")}`;
