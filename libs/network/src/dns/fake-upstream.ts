import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import * as packet from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';
import { FrameReader, frame } from './framing.js';

/**
 * For tests only (not exported by the package): a tiny DNS server on 127.0.0.1 (UDP and TCP on
 * the same port) that plays a host resolver. It answers every A query with `answerIp`, or stays
 * silent, or says SERVFAIL, and records what it was asked and over which transport.
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

export async function startFakeUpstream(answerIp = '192.0.2.53'): Promise<FakeUpstream> {
  for (let attempt = 0; ; attempt++) {
    const udp: UdpSocket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve());
    });
    const port = udp.address().port;
    const tcp: Server = createServer();
    const ok = await new Promise<boolean>((resolve, reject) => {
      tcp.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' && attempt < 20 ? resolve(false) : reject(err)));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!ok) {
      udp.close();
      continue;
    }
    const conns = new Set<Socket>();
    let closed: Promise<void> | undefined;
    const fake: FakeUpstream = {
      address: `127.0.0.1:${(tcp.address() as AddressInfo).port}`,
      port,
      mode: 'answer',
      answerIp,
      asked: [],
      close() {
        closed ??= (async () => {
          for (const c of conns) c.destroy();
          await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
        })();
        return closed;
      },
    };
    const note = (transport: 'udp' | 'tcp', q: DecodedPacket): void => {
      const question = q.questions?.[0];
      fake.asked.push({ transport, id: q.id ?? 0, name: question?.name ?? '', type: question?.type ?? '' });
    };
    udp.on('message', (msg, from) => {
      const q = packet.decode(msg);
      note('udp', q);
      if (fake.mode !== 'silent') udp.send(reply(q, fake.mode, fake.answerIp), from.port, from.address);
    });
    tcp.on('connection', (sock) => {
      conns.add(sock);
      sock.on('close', () => conns.delete(sock));
      sock.on('error', () => undefined);
      const reader = new FrameReader();
      sock.on('data', (chunk: Buffer) => {
        for (const msg of reader.push(chunk)) {
          const q = packet.decode(msg);
          note('tcp', q);
          if (fake.mode !== 'silent') sock.write(frame(reply(q, fake.mode, fake.answerIp)));
        }
      });
    });
    return fake;
  }
}
