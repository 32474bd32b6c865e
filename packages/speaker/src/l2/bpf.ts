// Classic BPF programs for the two sockets the speaker opens. The kernel drops everything else
// before it is queued, so a busy LAN costs the process nothing for frames it would ignore.
import { endianness } from "node:os";

/** One `struct sock_filter`: opcode, jump-if-true, jump-if-false, constant. */
export type BpfInstruction = readonly [code: number, jt: number, jf: number, k: number];
export type BpfProgram = readonly BpfInstruction[];

const LD_H_ABS = 0x28;
const LD_B_ABS = 0x30;
const JEQ_K = 0x15;
const RET_K = 0x06;
const ACCEPT = 0x40000;
const DROP = 0;

/** Ethernet ARP requests (opcode 1) only: replies are never answered. */
export const arpRequestFilter: BpfProgram = [
  [LD_H_ABS, 0, 0, 12],
  [JEQ_K, 0, 3, 0x0806],
  [LD_H_ABS, 0, 0, 20],
  [JEQ_K, 0, 1, 1],
  [RET_K, 0, 0, ACCEPT],
  [RET_K, 0, 0, DROP],
];

/** IPv6 packets whose next header is ICMPv6 (58) with type 135, Neighbor Solicitation. */
export const neighborSolicitationFilter: BpfProgram = [
  [LD_H_ABS, 0, 0, 12],
  [JEQ_K, 0, 5, 0x86dd],
  [LD_B_ABS, 0, 0, 20],
  [JEQ_K, 0, 3, 58],
  [LD_B_ABS, 0, 0, 54],
  [JEQ_K, 0, 1, 135],
  [RET_K, 0, 0, ACCEPT],
  [RET_K, 0, 0, DROP],
];

/** The program as the kernel's `struct sock_filter[]`, in this machine's byte order. */
export function encodeBpfProgram(program: BpfProgram): Buffer {
  const buffer = Buffer.alloc(program.length * 8);
  const little = endianness() === "LE";
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  program.forEach(([code, jt, jf, k], i) => {
    view.setUint16(i * 8, code, little);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k, little);
  });
  return buffer;
}
