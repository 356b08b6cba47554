/** The berth CLI's building blocks (the bin runs ./main.js). */
export { main } from './main.js';
export { parseArgs, renderHelp, UsageError } from './cli/args.js';
export type { CommandSpec, FlagSpec, ParsedArgs } from './cli/args.js';
export { Client, parseHost, CliError, DaemonError, ConnectError, DEFAULT_HOST } from './client.js';
export { parseTemplate, formatSpec, goString } from './output/template.js';
export { tabwrite, humanDuration, humanSize, bytesSize, shortId, ellipsis } from './output/format.js';
