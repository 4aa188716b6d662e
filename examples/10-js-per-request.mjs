// Example 10: a node:http server that runs a user-supplied JavaScript function per request, each in a micro-VM of
// a JsSandboxPool (loopback only). Users upload `function handle(req) {...}` with PUT /fn/<name>; GET /run/<name>
// calls it with the query string. Guest code reaches the app only through host.* functions. Run with --serve to
// keep it up; without, it uploads three functions, sends itself requests and stops.
import { once } from 'node:events';
import http from 'node:http';
import { JsSandboxPool } from 'hyperlight-ts';

const prices = new Map([['apple', 3], ['pear', 5]]); // the application's state, never visible to guests
const pool = await JsSandboxPool.create({
  size: 2, timeoutMs: 200, memoryLimit: 16, print: (text) => process.stdout.write(`  [guest] ${text}`),
  hostFunctions: { price: async (item) => prices.get(String(item)) ?? null },
});
const functions = new Map(); // name -> source uploaded by a user

const STATUS = { ERR_JS_EXCEPTION: 422, ERR_EXECUTION_CANCELED: 504, ERR_JS_OUT_OF_MEMORY: 507 };
const server = http.createServer(async (req, res) => {
  const [, verb, name] = new URL(req.url, 'http://localhost').pathname.split('/');
  const send = (status, body) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  if (req.method === 'PUT' && verb === 'fn') {
    let source = '';
    for await (const chunk of req) source += chunk;
    functions.set(name, source);
    return send(201, { stored: name });
  }
  const source = functions.get(name);
  if (verb !== 'run' || source === undefined) return send(404, { error: 'no such function' });
  const query = Object.fromEntries(new URL(req.url, 'http://localhost').searchParams);
  const js = await pool.acquire(); // a ready VM: no start-up on the request's path
  try {
    await js.run(source, { keepState: true }); // defines handle() in this sandbox only
    send(200, { result: await js.apply('handle', [query], { keepState: true }) });
  } catch (e) {
    send(STATUS[e.code] ?? 500, { error: e.code, message: e.message });
  } finally {
    await pool.release(js); // back to the clean template: nothing leaks to the next request
  }
});
await once(server.listen(0, '127.0.0.1'), 'listening');
const base = `http://127.0.0.1:${server.address().port}`;
console.log(`listening on ${base}`);

if (process.argv.includes('--serve')) await once(process, 'SIGINT');
else {
  const upload = (name, source) => fetch(`${base}/fn/${name}`, { method: 'PUT', body: source });
  await upload('total', 'function handle(q) { const p = host.price(q.item); console.log("pricing", q.item); return p * Number(q.qty) }');
  await upload('spin', 'function handle() { for (;;) {} }');
  await upload('leak', 'var seen = (globalThis.seen ?? 0) + 1; function handle() { throw new Error("seen " + seen) }');
  const get = async (path) => { const r = await fetch(base + path); return `${r.status} ${JSON.stringify(await r.json())}`; };
  console.log(`/run/total?item=pear&qty=4: ${await get('/run/total?item=pear&qty=4')}`);
  console.log(`/run/spin: ${await get('/run/spin')}`);
  console.log(`/run/leak twice: ${await get('/run/leak')} then ${await get('/run/leak')}`);
  const results = await Promise.all([1, 2, 3, 4, 5, 6].map((q) => get(`/run/total?item=apple&qty=${q}`)));
  console.log(`6 concurrent requests on 2 VMs: ${results.map((r) => JSON.parse(r.slice(4)).result).join(' ')}`);
}
server.closeAllConnections();
server.close();
await pool.close();
console.log('closed');
