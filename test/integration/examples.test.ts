// Runs every script in examples/ with node, as a reader would, and checks the lines that carry each example's point.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { describeKvm } from '../helpers/kvm.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DIR = join(ROOT, 'examples');

/** What each example must print (regular expressions, in any order). */
const EXPECTED: Record<string, RegExp[]> = {
  '01-hello-real-mode.mjs': [
    /^guest wrote: "Hello from real mode!\\n"$/m,
    /^exits: 23 \(22 OUTs, one per character, then 1 HLT\)$/m,
    /^final RIP 0x100f /m,
  ],
  '02-long-mode.mjs': [
    /^walk 0x4000 -> physical 0x4000, 2048 KiB page, writable true$/m,
    /^OUT to port 0x500: eax = 0xaaccef10$/m,
    /^rax = 0x22446688aaccef10 /m,
    /^memory\[0x5000\] = 0x22446688aaccef10$/m,
    /^EFER\.LMA = true \(the CPU is in long mode\), CS\.L = 1$/m,
  ],
  '03-page-fault.mjs': [
    /^vector 14 \(#PF\) CR2 0x400000 error code 0x2 \(not present, write, supervisor\) faulting RIP 0x4005$/m,
    /^vector 14 \(#PF\) CR2 0x200000 error code 0x3 \(protection violation, write, supervisor\) faulting RIP 0x4010$/m,
  ],
  '04-host-call-port.mjs': [
    /^guest called square\(1\) at RIP 0x100b; host answered 1$/m,
    /^guest called square\(3\) at RIP 0x100b; host answered 9$/m,
    /^guest halted with BX = 14 /m,
  ],
  '09-ring3-doorbell.mjs': [
    /^doorbell: the CPL3 guest stored 41 at 0x200360 \(op 108\)$/m,
    /^doorbell: the CPL3 guest stored 42 at 0x200360 \(op 108\)$/m,
    /^#GP at CPL3: the host's CPL0 handler reports RIP 0x4009 \(the cli\), CS 0x23 \(ring 3\)$/m,
  ],
  '05-snapshot-restore.mjs': [
    /^after init: counter = 0$/m,
    /^after two calls: counter = 42$/m,
    /^after restore: counter = 0$/m,
    /^call failed: ERR_GUEST_ABORTED \(abort code 9\); sandbox is poisoned$/m,
    /^next call refused: ERR_SANDBOX_POISONED$/m,
    /^after restore: sandbox is ready, counter = 0$/m,
  ],
  '07-worker-threads.mjs': [
    /^answers: hello, 42$/m,
    /^kill\(\) from the main thread: true$/m,
    /^Spin ended with ERR_EXECUTION_CANCELED; the worker restored its sandbox$/m,
    /^meanwhile the main thread's 5 ms timer ticked on \(\d+ times\)$/m,
    /^after restore: still serving$/m,
  ],
  '08-http-server.mjs': [
    /^listening on http:\/\/127\.0\.0\.1:\d+$/m,
    /^20 requests to \/add: 20 x 200, sums correct: true$/m,
    /^\/spin with a 50 ms limit: 504 ERR_EXECUTION_CANCELED$/m,
    /^after the timeout: \/echo answered 200 "still serving"$/m,
    /^pool stats: 22 calls, 21 ok, errors \{"ERR_EXECUTION_CANCELED":1\}, p50 latency > 0 ms$/m,
    /^closed: 0 workers left$/m,
  ],
  '10-js-per-request.mjs': [
    /^listening on http:\/\/127\.0\.0\.1:\d+$/m,
    /^ {2}\[guest\] pricing pear$/m,
    /^\/run\/total\?item=pear&qty=4: 200 \{"result":20\}$/m,
    /^\/run\/spin: 504 \{"error":"ERR_EXECUTION_CANCELED"/m,
    /^\/run\/leak twice: 422 \{"error":"ERR_JS_EXCEPTION","message":"Error: seen 1"\} then 422 \{"error":"ERR_JS_EXCEPTION","message":"Error: seen 1"\}$/m,
    /^6 concurrent requests on 2 VMs: 3 6 9 12 15 18$/m,
    /^closed$/m,
  ],
  '06-sandbox-exits.mjs': [
    /^ {2}exit at \+\d+ us: doorbell op 101 \(host call\), RIP 0x[0-9a-f]+\n {2}host function HostMethod1\("Hello from GuestFunction1, world"\) runs on the host\n {2}exit at \+\d+ us: doorbell op 108 \(halt\)/m,
    /^result 32: /m,
  ],
};

const scripts = readdirSync(DIR).filter((f) => f.endsWith('.mjs')).sort();

it('every example has expectations, at least five exist, each under 80 lines with a header comment', () => {
  expect(scripts.length).toBeGreaterThanOrEqual(5);
  expect(scripts).toEqual(Object.keys(EXPECTED).sort());
  for (const s of scripts) {
    const text = readFileSync(join(DIR, s), 'utf8');
    expect(text.split('\n').length, s).toBeLessThan(80);
    expect(text, s).toMatch(/^\/\/ Example \d+: /);
    expect(text, s).toMatch(/from 'hyperlight-ts'/); // the package's own name, via self-reference
  }
});

describeKvm('examples', () => {
  it.each(scripts)('%s runs and prints its point', (script) => {
    const r = spawnSync(process.execPath, [join(DIR, script)], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const re of EXPECTED[script]!) expect(r.stdout).toMatch(re);
  });
});
