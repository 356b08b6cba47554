import type { Socket } from 'node:net';
import * as packet from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';
import { FrameReader, frame } from './framing.js';
import { closeServer, closeUdp, listenLoopbackPair, type LoopbackPairOptions } from './loopback-pair.js';

/**
 * For tests only (not exported by the package): a tiny DNS server on 127.0.0.1 (UDP and TCP on
 * the same port) that plays a host resolver. It answers every A query with `answerIp`, or stays
 * silent, or says SERVFAIL, and records what it was asked and over which transport.
 *
 * Its port is one that traffic to 127.0.0.1 really reaches (see listenLoopbackPair): on a host
 * where a published port range DNATs loopback traffic, a fake that only bound its port would
 * see none of the forwards (they fail with recvmsg ECONNREFUSED, or go unanswered).
 */
export interface FakeUpstream {
  /** `127.0.0.1:<port>`, as an upstream entry. */
  readonly address: string;
  readonly port: number;
  mode: 'answer' | 'silent' | 'servfail';
  answerIp: string;
  readonly asked: { transport: 'udp' | 'tcp'; id: number; name: string; type: string }[];
  close(): Promise<void>;
}

function reply(q: DecodedPacket, mode: FakeUpstream['mode'], ip: string): Buffer {
  const question = q.questions?.[0];
  const answers: Answer[] =
    mode === 'answer' && question?.type === 'A' ? [{ type: 'A', name: question.name, ttl: 30, data: ip } as Answer] : [];
  const rcode = mode === 'servfail' ? 2 : answers.length === 0 ? 3 : 0;
  return packet.encode({
    type: 'response',
    id: q.id ?? 0,
    flags: packet.RECURSION_AVAILABLE | ((q.flags ?? 0) & packet.RECURSION_DESIRED) | rcode,
    questions: q.questions ?? [],
    answers,
  });
}

/** Starts a fake resolver on a port of 127.0.0.1 that traffic really reaches (see listenLoopbackPair). */
export async function startFakeUpstream(answerIp = '192.0.2.53', opts: LoopbackPairOptions = {}): Promise<FakeUpstream> {
  const { udp, tcp, port } = await listenLoopbackPair(opts);
  const conns = new Set<Socket>();
  let closed: Promise<void> | undefined;
  const fake: FakeUpstream = {
    address: `127.0.0.1:${port}`,
    port,
    mode: 'answer',
    answerIp,
    asked: [],
    close() {
      closed ??= (async () => {
        for (const c of conns) c.destroy();
        await Promise.all([closeUdp(udp), closeServer(tcp)]);
      })();
      return closed;
    },
  };
  /** The reply to a query, or undefined to stay silent. */
  const handle = (transport: 'udp' | 'tcp', msg: Buffer): Buffer | undefined => {
    let q: DecodedPacket;
    try {
      q = packet.decode(msg);
    } catch {
      return undefined;
    }
    const question = q.questions?.[0];
    fake.asked.push({ transport, id: q.id ?? 0, name: question?.name ?? '', type: question?.type ?? '' });
    return fake.mode === 'silent' ? undefined : reply(q, fake.mode, fake.answerIp);
  };
  udp.on('message', (msg, from) => {
    const r = handle('udp', msg);
    if (r !== undefined) udp.send(r, from.port, from.address);
  });
  tcp.on('connection', (sock) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => undefined);
    const reader = new FrameReader();
    sock.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = reader.push(chunk);
      } catch {
        sock.destroy();
        return;
      }
      for (const msg of messages) {
        const r = handle('tcp', msg);
        if (r !== undefined) sock.write(frame(r));
      }
    });
  });
  return fake;
}
