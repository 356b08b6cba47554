import { isIPv4 } from 'node:net';
import * as packet from 'dns-packet';
import type { Answer, DecodedPacket, Question } from 'dns-packet';

/** What Berth knows about names, asked on every query (the lead's sandbox/network view). */
export interface DnsRecords {
  /** name as asked (no trailing dot, lower-cased): the container's IPv4/IPv6 addresses on the networks this sandbox shares, or undefined when Berth does not know the name. */
  lookup(name: string): { a: string[]; aaaa: string[] } | undefined;
  /** in-addr.arpa / ip6.arpa reverse: name for an address Berth assigned, else undefined. IPv6 addresses come in RFC 5952 form (`fd00::5`). */
  reverse(ip: string): string | undefined;
}

/** TTL of the records Berth answers itself (Docker's embedded DNS uses 600 s). */
export const LOCAL_TTL = 600;
/** UDP payload size without EDNS (RFC 1035). */
export const CLASSIC_UDP_SIZE = 512;
/** The payload size Berth offers in its own EDNS answers and the most it honours from a client. */
export const EDNS_UDP_SIZE = 1232;

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = keyof typeof RCODE;

/** What to do with one query. `query` is the decoded packet when decoding worked. */
export type Route =
  | { kind: 'drop'; reason: string }
  | { kind: 'answer'; response: Buffer; local: string }
  | { kind: 'forward'; query: DecodedPacket; reason: string };

export interface RouteOptions {
  /** The query came over UDP: an answer larger than the client can take is truncated (TC set). */
  udp: boolean;
  /** Order the answers (tests); default shuffles them like Docker (round robin between containers sharing an alias). */
  shuffle?: <T>(items: T[]) => T[];
}

/** Lower-cased, without the trailing dot; '' for the root. */
export function normalizeName(name: string): string {
  let n = name.toLowerCase();
  while (n.endsWith('.')) n = n.slice(0, -1);
  return n;
}

/**
 * The address a reverse name stands for (`5.0.99.10.in-addr.arpa` -> `10.99.0.5`, 32 nibbles
 * of ip6.arpa -> RFC 5952 text), or undefined when the name is not a full reverse name.
 */
export function reverseNameToIp(name: string): string | undefined {
  const n = normalizeName(name);
  if (n.endsWith('.in-addr.arpa')) {
    const labels = n.slice(0, -'.in-addr.arpa'.length).split('.');
    if (labels.length !== 4 || !labels.every((l) => /^(0|[1-9]\d{0,2})$/.test(l) && Number(l) <= 255)) return undefined;
    const ip = labels.reverse().join('.');
    return isIPv4(ip) ? ip : undefined;
  }
  if (n.endsWith('.ip6.arpa')) {
    const nibbles = n.slice(0, -'.ip6.arpa'.length).split('.');
    if (nibbles.length !== 32 || !nibbles.every((x) => /^[0-9a-f]$/.test(x))) return undefined;
    const hex = nibbles.reverse().join('');
    const groups: string[] = [];
    for (let i = 0; i < 32; i += 4) groups.push(hex.slice(i, i + 4));
    // The WHATWG URL parser prints IPv6 in RFC 5952 form (lower case, longest zero run as ::).
    return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
  }
  return undefined;
}

function shuffled<T>(items: T[]): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function ednsOf(query: DecodedPacket): { udpPayloadSize: number } | undefined {
  const opt = (query.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
  return opt === undefined ? undefined : { udpPayloadSize: opt.udpPayloadSize ?? CLASSIC_UDP_SIZE };
}

/** The largest UDP answer this client takes. */
export function udpLimit(query: DecodedPacket): number {
  const edns = ednsOf(query);
  if (edns === undefined) return CLASSIC_UDP_SIZE;
  return Math.min(Math.max(edns.udpPayloadSize, CLASSIC_UDP_SIZE), EDNS_UDP_SIZE);
}

function opcodeBits(query: DecodedPacket): number {
  const header = query as DecodedPacket & { opcode?: string };
  const codes: Record<string, number> = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 };
  return (codes[header.opcode ?? 'QUERY'] ?? 0) << 11;
}

/** An answer to the (single) question: its owner name is the question's name. */
export interface LocalAnswer {
  type: 'A' | 'AAAA' | 'PTR';
  data: string;
}

/** Record bytes after the owner name, from dns-packet (encoded with the root name, one 0 byte, cut off). */
function rdataPart(a: LocalAnswer): Buffer {
  const whole = packet.encode({ type: 'response', answers: [{ type: a.type, name: '.', ttl: LOCAL_TTL, data: a.data } as Answer] });
  return whole.subarray(12 + 1);
}

/**
 * A response to `query`: same id and question(s), RD and CD echoed, RA set (Berth forwards),
 * with the given rcode and answers. Answer names point at the question (name compression, as
 * every DNS server does), so 512 bytes hold ~30 A records of any name. Over UDP, answers that
 * do not fit the client's size are cut and TC is set.
 */
export function buildResponse(
  query: DecodedPacket,
  opts: { rcode: Rcode; answers?: LocalAnswer[]; authoritative?: boolean; udp: boolean },
): Buffer {
  const echoed = (query.flags ?? 0) & (packet.RECURSION_DESIRED | packet.CHECKING_DISABLED);
  let flags = echoed | packet.RECURSION_AVAILABLE | opcodeBits(query) | RCODE[opts.rcode];
  if (opts.authoritative === true) flags |= packet.AUTHORITATIVE_ANSWER;
  const questions = query.questions ?? [];
  const head = packet.encode({ type: 'response', id: query.id ?? 0, flags, questions });
  const answers = questions.length === 1 ? (opts.answers ?? []) : [];
  // 0xc00c: a pointer to offset 12, where the first question's name starts.
  const records = answers.map((a) => Buffer.concat([Buffer.from([0xc0, 0x0c]), rdataPart(a)]));
  const edns = ednsOf(query);
  const opt = edns === undefined ? Buffer.alloc(0) : packet.encode({ type: 'response', additionals: [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_SIZE } as Answer] }).subarray(12);
  let count = records.length;
  if (opts.udp) {
    const room = udpLimit(query) - head.length - opt.length;
    let used = 0;
    count = 0;
    while (count < records.length && used + records[count]!.length <= room) used += records[count++]!.length;
  }
  const out = Buffer.concat([head, ...records.slice(0, count), opt]);
  if (count < records.length) out.writeUInt16BE(out.readUInt16BE(2) | packet.TRUNCATED_RESPONSE, 2);
  out.writeUInt16BE(count, 6);
  out.writeUInt16BE(edns === undefined ? 0 : 1, 10);
  return out;
}

/** SERVFAIL for a query Berth could not forward (no upstream answered in time). */
export function servfail(query: DecodedPacket, udp: boolean): Buffer {
  return buildResponse(query, { rcode: 'SERVFAIL', udp });
}

/** Decodes a query; undefined (with the reason) for anything that is not one. */
export function decodeQuery(raw: Buffer): { query: DecodedPacket } | { error: string } {
  if (raw.length < 12) return { error: `short packet (${raw.length} bytes)` };
  if ((raw[2]! & 0x80) !== 0) return { error: 'a response, not a query' };
  // The counts must fit the bytes (a question takes 5 or more, a record 11 or more). The
  // decoder allocates an array per count first, so 40 bytes claiming 4 x 65535 entries would
  // cost milliseconds of berthd's event loop each.
  const counts = [4, 6, 8, 10].map((o) => raw.readUInt16BE(o));
  if (12 + 5 * counts[0]! + 11 * (counts[1]! + counts[2]! + counts[3]!) > raw.length) {
    return { error: `counts ${counts.join('/')} do not fit ${raw.length} bytes` };
  }
  let query: DecodedPacket;
  try {
    query = packet.decode(raw);
  } catch (err) {
    return { error: `malformed packet: ${(err as Error).message}` };
  }
  if (query.type === 'response') return { error: 'a response, not a query' };
  return { query };
}

/**
 * Decides what to do with one raw query: answer it from Berth's records (A, AAAA of known
 * names, PTR of addresses Berth assigned), forward it to the host's resolvers (everything
 * else, including unknown single-label names and names under the network's domain), or drop
 * it (not a DNS query).
 */
export function routeQuery(raw: Buffer, records: DnsRecords, opts: RouteOptions): Route {
  const decoded = decodeQuery(raw);
  if ('error' in decoded) return { kind: 'drop', reason: decoded.error };
  const { query } = decoded;
  const opcode = (query as DecodedPacket & { opcode?: string }).opcode;
  if (opcode !== 'QUERY') {
    return { kind: 'answer', response: buildResponse(query, { rcode: 'NOTIMP', udp: opts.udp }), local: `opcode ${opcode ?? '?'}` };
  }
  const questions = query.questions ?? [];
  if (questions.length !== 1) {
    return { kind: 'answer', response: buildResponse(query, { rcode: 'FORMERR', udp: opts.udp }), local: `${questions.length} questions` };
  }
  const q = questions[0] as Question;
  if (q.class !== undefined && q.class !== 'IN') return { kind: 'forward', query, reason: `class ${q.class}` };
  const name = normalizeName(q.name);
  if (name === '') return { kind: 'forward', query, reason: 'root' };
  const order = opts.shuffle ?? shuffled;

  if (q.type === 'A' || q.type === 'AAAA') {
    const found = records.lookup(name);
    if (found === undefined) return { kind: 'forward', query, reason: 'unknown name' };
    const ips = q.type === 'A' ? found.a : found.aaaa;
    // A known name without an address of this family: an empty NOERROR answer (NODATA), as
    // Docker does, so the client does not go looking for it elsewhere.
    const answers = order(ips).map((ip): LocalAnswer => ({ type: q.type as 'A' | 'AAAA', data: ip }));
    return {
      kind: 'answer',
      response: buildResponse(query, { rcode: 'NOERROR', answers, authoritative: true, udp: opts.udp }),
      local: `${q.type} ${name}: ${ips.length}`,
    };
  }
  if (q.type === 'PTR') {
    const ip = reverseNameToIp(name);
    if (ip === undefined) return { kind: 'forward', query, reason: 'not a reverse name' };
    const host = records.reverse(ip);
    if (host === undefined) return { kind: 'forward', query, reason: 'address not Berth\'s' };
    const answers: LocalAnswer[] = [{ type: 'PTR', data: host }];
    return {
      kind: 'answer',
      response: buildResponse(query, { rcode: 'NOERROR', answers, authoritative: true, udp: opts.udp }),
      local: `PTR ${ip}: ${host}`,
    };
  }
  return { kind: 'forward', query, reason: `type ${q.type}` };
}
