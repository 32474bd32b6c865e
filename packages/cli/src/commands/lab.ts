import type { Command } from "../command.ts";

export const command: Command = async () => {
  process.stderr.write("bollard lab: not implemented yet\n");
  return 1;
};
