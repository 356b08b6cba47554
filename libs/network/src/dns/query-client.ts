import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import * as packet from 'dns-packet';
import type { DecodedPacket, RecordType } from 'dns-packet';
import { FrameReader, frame } from './framing.js';

/** For tests only: DNS client helpers over UDP and TCP to 127.0.0.1 or the address given. */
export type Reply = DecodedPacket & { rcode: string };

export function encodeQuery(name: string, type: RecordType, id = Math.floor(Math.random() * 65535)): Buffer {
  return packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] });
}

export function udpExchange(port: number, raw: Buffer, host = '127.0.0.1', timeoutMs = 3000): Promise<Reply | undefined> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => { s.close(); resolve(undefined); }, timeoutMs);
    s.on('error', (err) => { clearTimeout(t); s.close(); reject(err); });
    s.on('message', (m) => { clearTimeout(t); s.close(); resolve(packet.decode(m) as Reply); });
    s.send(raw, port, host);
  });
}

/** Sends all queries on one connection (pipelined) and collects as many replies. */
export function tcpExchange(port: number, raws: Buffer[], host = '127.0.0.1', timeoutMs = 3000): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    const reader = new FrameReader();
    const out: Reply[] = [];
    const t = setTimeout(() => { s.destroy(); resolve(out); }, timeoutMs);
    s.on('error', (err) => { clearTimeout(t); reject(err); });
    s.on('connect', () => s.write(Buffer.concat(raws.map(frame))));
    s.on('data', (c: Buffer) => {
      for (const m of reader.push(c)) out.push(packet.decode(m) as Reply);
      if (out.length >= raws.length) { clearTimeout(t); s.destroy(); resolve(out); }
    });
    s.on('close', () => { clearTimeout(t); resolve(out); });
  });
}
