import type { Command } from "../command.ts";

export const command: Command = async () => {
  process.stderr.write("bollard speaker: not implemented yet\n");
  return 1;
};
