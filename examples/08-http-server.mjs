// Example 8: a node:http server that runs one guest call per request through a SandboxPool
// (loopback only). The event loop stays free: guests run in worker threads, host functions
// here. Run with --serve to keep it up; without, it sends itself 20 requests and stops.
import http from 'node:http';
import { SandboxPool, bundledGuestPath } from 'hyperlight-ts';

const pool = await SandboxPool.create({
  guest: bundledGuestPath('simpleguest'),
  workers: 2,
  maxQueue: 64, // beyond that, callers get PoolBusyError at once: answer 503
  hostFunctions: { HostAdd: { params: ['Int', 'Int'], returns: 'Int', fn: async (a, b) => a + b } },
  print: () => {},
});

const STATUS = { ERR_POOL_BUSY: 503, ERR_EXECUTION_CANCELED: 504, ERR_PARAMETER_TYPE_MISMATCH: 400 };
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const q = (k) => url.searchParams.get(k) ?? '';
  const ac = new AbortController(); // a client that goes away stops its guest call
  res.on('close', () => { if (!res.writableFinished) ac.abort(new Error('client went away')); });
  const options = { signal: ac.signal, timeoutMs: url.pathname === '/spin' ? 50 : 2000 };
  try {
    let result;
    if (url.pathname === '/add') result = await pool.callGuestFunctionByName('Add', 'Int', [Number(q('a')) | 0, Number(q('b')) | 0], options);
    else if (url.pathname === '/echo') result = await pool.callGuestFunctionByName('Echo', 'String', [q('text')], options);
    else if (url.pathname === '/spin') result = await pool.callGuestFunctionByName('Spin', 'Void', [], options);
    else return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result }));
  } catch (e) {
    res.writeHead(STATUS[e.code] ?? 500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: e.code }));
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;
console.log(`listening on ${base}`);

if (process.argv.includes('--serve')) {
  await new Promise((resolve) => process.once('SIGINT', resolve));
} else {
  // A bounded request loop: 20 additions, 4 at a time.
  const statuses = [];
  let correct = true;
  for (let i = 0; i < 20; i += 4) {
    await Promise.all([0, 1, 2, 3].map(async (j) => {
      const r = await fetch(`${base}/add?a=${i + j}&b=100`);
      statuses.push(r.status);
      correct &&= (await r.json()).result === i + j + 100;
    }));
  }
  console.log(`20 requests to /add: ${statuses.filter((s) => s === 200).length} x 200, sums correct: ${correct}`);
  const spin = await fetch(`${base}/spin`);
  console.log(`/spin with a 50 ms limit: ${spin.status} ${(await spin.json()).error}`);
  const echo = await fetch(`${base}/echo?text=still%20serving`);
  console.log(`after the timeout: /echo answered ${echo.status} ${JSON.stringify((await echo.json()).result)}`);
  const st = pool.stats();
  console.log(`pool stats: ${st.calls} calls, ${st.ok} ok, errors ${JSON.stringify(st.errors)}, p50 latency ${st.latencyMs.p50 > 0 ? '> 0' : '0'} ms`);
}
server.closeAllConnections();
await new Promise((resolve) => server.close(resolve));
await pool.close();
console.log(`closed: ${pool.stats().workers} workers left`);
