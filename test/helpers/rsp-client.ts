// Test helper: a gdb remote-protocol client in a worker thread (the sandbox's calls block the main thread while the stub serves). It connects, sends each packet of a script in order and records the replies; a reply to c/s arrives when the guest stops.
import { Worker } from 'node:worker_threads';

/** One step: a packet to send (without framing). */
export type RspScript = readonly string[];

const CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { port, script } = workerData;
const sum = (s) => { let c = 0; for (const ch of Buffer.from(s, 'latin1')) c = (c + ch) & 0xff; return c.toString(16).padStart(2, '0'); };
let buf = '';
let waiting;
function connect(tries) {
  const sock = net.connect(port, '127.0.0.1');
  let connected = false;
  sock.on('error', (e) => {
    if (connected) return; // a reset after the stub closed: 'close' follows
    if (tries > 0 && e.code === 'ECONNREFUSED') setTimeout(() => connect(tries - 1), 50);
    else parentPort.postMessage({ error: String(e) });
  });
  sock.on('connect', () => { connected = true; });
  sock.on('connect', () => run(sock));
}
function nextReply(sock) {
  return new Promise((resolve) => { waiting = resolve; pump(sock); });
}
function pump(sock) {
  for (;;) {
    while (buf[0] === '+' || buf[0] === '-') buf = buf.slice(1);
    const start = buf.indexOf('$');
    const end = buf.indexOf('#', start);
    if (start < 0 || end < 0 || buf.length < end + 3 || !waiting) return;
    const payload = buf.slice(start + 1, end);
    const ok = buf.slice(end + 1, end + 3) === sum(payload);
    buf = buf.slice(end + 3);
    sock.write(ok ? '+' : '-');
    const w = waiting; waiting = undefined;
    w(ok ? payload : '<bad checksum>');
  }
}
async function run(sock) {
  sock.setEncoding('latin1');
  let closed = false;
  sock.on('data', (d) => { buf += d; pump(sock); });
  sock.on('close', () => { closed = true; if (waiting) { const w = waiting; waiting = undefined; w('<closed>'); } });
  const replies = [];
  for (const p of script) {
    if (closed) { replies.push('<closed>'); continue; }
    sock.write('$' + p + '#' + sum(p));
    if (p === 'k') { replies.push(''); continue; }
    replies.push(await nextReply(sock));
  }
  // What the stub says last (W00 when the sandbox closes), or that it closed.
  replies.push(closed ? '<closed>' : await nextReply(sock));
  sock.destroy();
  parentPort.postMessage({ replies });
}
connect(200);
`;

/** Starts the client; resolves to the replies (one per packet, then the stub's last word) when it is done. */
export function rspClient(port: number, script: RspScript): { done: Promise<string[]>; worker: Worker } {
  const worker = new Worker(CLIENT, { eval: true, workerData: { port, script } });
  const done = new Promise<string[]>((resolve, reject) => {
    worker.once('message', (m: { replies?: string[]; error?: string }) => (m.replies ? resolve(m.replies) : reject(new Error(m.error))));
    worker.once('error', reject);
  });
  return { done, worker };
}

/** A TCP port nobody listens on right now (bound to 0, read, closed). */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}
