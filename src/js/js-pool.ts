// JsSandboxPool: JavaScript sandboxes started ahead of time, so that handing one out costs no VM start (docs/javascript.md
// "Pools"). It does not run calls itself: acquire() gives a JsSandbox, release() puts it back in its template state.
import { ConfigInvalidError } from '../errors.js';
import { ResourceClosedError } from '../kvm/errors.js';
import type { AsyncSnapshot } from '../async/async-sandbox.js';
import { JsSandbox, type JsSandboxOptions } from './js-sandbox.js';

/** Options of JsSandboxPool.create: those of JsSandbox plus the pool's. */
export interface JsSandboxPoolOptions extends JsSandboxOptions {
  /** Sandboxes in the pool, 1..256; default 2. */
  size?: number;
  /** Code loaded into every sandbox before it is handed out (its state is what release() returns to). */
  code?: string;
}

/** `size` JsSandboxes started ahead: acquire() hands out an idle one, release() restores it to the template and takes it back. */
export class JsSandboxPool {
  readonly #options: JsSandboxPoolOptions;
  readonly #size: number;
  readonly #idle: JsSandbox[] = [];
  readonly #waiting: { resolve: (js: JsSandbox) => void; reject: (e: unknown) => void }[] = [];
  /** Every sandbox of the pool (idle or acquired) and the state release() returns it to. */
  readonly #owned = new Map<JsSandbox, AsyncSnapshot>();
  #starting = 0;
  #closed = false;
  #lastError: unknown;

  private constructor(options: JsSandboxPoolOptions, size: number) {
    this.#options = options;
    this.#size = size;
  }

  /** Starts `size` sandboxes (loading `code` into each) and resolves when all are ready; rejects with the first failure. */
  static async create(options: JsSandboxPoolOptions = {}): Promise<JsSandboxPool> {
    const size = options.size ?? 2;
    if (!Number.isInteger(size) || size < 1 || size > 256) throw new ConfigInvalidError('size', 'must be an integer from 1 to 256');
    if (options.code !== undefined && typeof options.code !== 'string') throw new ConfigInvalidError('code', 'must be a string');
    const pool = new JsSandboxPool(options, size);
    const started = await Promise.allSettled(Array.from({ length: size }, () => pool.#startOne()));
    const failed = started.find((r) => r.status === 'rejected');
    for (const r of started) if (r.status === 'fulfilled') pool.#idle.push(r.value);
    if (failed) {
      await pool.close();
      throw failed.reason;
    }
    return pool;
  }

  async #startOne(): Promise<JsSandbox> {
    const js = JsSandbox.fromParts(await JsSandbox.start(this.#options));
    try {
      if (this.#options.code !== undefined) await js.load(this.#options.code);
    } catch (e) {
      await js.close();
      throw e;
    }
    this.#owned.set(js, js.base);
    return js;
  }

  /** Sandboxes idle now. */
  get idle(): number {
    return this.#idle.length;
  }

  /**
   * A ready sandbox in the pool's template state; waits while all `size` are acquired. Give it back with release() (a
   * restore, no VM start); close() on it drops it from the pool, which starts a replacement.
   */
  acquire(): Promise<JsSandbox> {
    if (this.#closed) return Promise.reject(new ResourceClosedError('JsSandboxPool'));
    const js = this.#idle.pop();
    if (js) return Promise.resolve(js);
    const waiting = new Promise<JsSandbox>((resolve, reject) => { this.#waiting.push({ resolve, reject }); });
    this.#refill();
    return waiting;
  }

  /** Puts `js` back in the template state and back in the pool (a closed one is replaced). Resolves once it is idle again. */
  async release(js: JsSandbox): Promise<void> {
    const template = this.#owned.get(js);
    if (template === undefined) throw new ConfigInvalidError('sandbox', 'release() takes a sandbox acquired from this pool');
    if (!this.#closed && !js.closed) {
      try {
        await js.reset(template);
        this.#give(js);
        return;
      } catch {
        // a sandbox that cannot be restored is replaced
      }
    }
    await this.#drop(js);
  }

  async #drop(js: JsSandbox): Promise<void> {
    this.#owned.delete(js);
    await js.close();
    this.#refill();
  }

  #give(js: JsSandbox): void {
    const w = this.#waiting.shift();
    if (w) w.resolve(js);
    else this.#idle.push(js);
  }

  /** Starts sandboxes until the pool holds `size` again (sandboxes closed by their users are replaced). */
  #refill(): void {
    for (const js of this.#owned.keys()) if (js.closed && !this.#idle.includes(js)) this.#owned.delete(js);
    while (!this.#closed && this.#owned.size + this.#starting < this.#size) {
      this.#starting++;
      this.#startOne().then((js) => {
        this.#starting--;
        if (this.#closed) void js.close();
        else this.#give(js);
      }, (e: unknown) => {
        this.#starting--;
        this.#lastError = e;
        // With no sandbox left to wait for, the waiting callers get the start failure.
        if (this.#starting === 0 && this.#idle.length === 0) for (const w of this.#waiting.splice(0)) w.reject(e);
      });
    }
  }

  /** The last failure to start a replacement sandbox, if any. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** Closes every sandbox of the pool (also acquired ones); waiting acquire() calls reject with ResourceClosedError. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w.reject(new ResourceClosedError('JsSandboxPool'));
    const all = [...this.#owned.keys()];
    this.#owned.clear();
    this.#idle.length = 0;
    await Promise.all(all.map((js) => js.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
