// Letting the application's SIGINT/SIGTERM listeners run while a guest spins. Node runs a
// listener only when its event loop turns, never during a synchronous call: so while a call
// runs, those signals get a handler that records them, the run loop ends the call when one
// arrived, and the signal is raised again for Node once its own handler is back. No guests.
import { sigaction } from '../kvm/layouts.generated.js';
import { SIGINT, SIGTERM, recordSignalInUmask, restoreSigaction, umask } from '../kvm/libc.js';

const WATCHED: ReadonlyArray<readonly [number, NodeJS.Signals]> = [[SIGINT, 'SIGINT'], [SIGTERM, 'SIGTERM']];

/**
 * One run loop's watch for SIGINT and SIGTERM. It is active during a call only while the
 * process listens for one of them (`process.on('SIGINT', ...)`); otherwise the signal's
 * usual behaviour applies and this costs two listener counts per call.
 *
 * How a signal is recorded without native code of our own: the handler is libc's `umask`,
 * which sets the process's umask to the signal number (2 or 15). The umask is set to a
 * sentinel different from both for the call and put back after it; between a signal and
 * the check (at most one guest exit) files created by other threads get that umask.
 */
export class ProcessSignalWatch {
  readonly #saved = WATCHED.map(() => new Uint8Array(sigaction.size));
  readonly #installed: boolean[] = WATCHED.map(() => false);
  #active = false;
  #umask = 0;
  #sentinel = 0;
  #caught: NodeJS.Signals | undefined;

  /** At the start of a call or init, on the vCPU thread. */
  begin(): void {
    if (!WATCHED.some(([, name]) => process.listenerCount(name) > 0)) return;
    this.#umask = umask(0o077);
    this.#sentinel = WATCHED.some(([n]) => n === this.#umask) ? this.#umask | 0o020 : this.#umask;
    umask(this.#sentinel);
    this.#caught = undefined;
    this.#active = true;
    WATCHED.forEach(([n, name], i) => {
      if (process.listenerCount(name) === 0) return;
      recordSignalInUmask(n, this.#saved[i]!);
      this.#installed[i] = true;
    });
  }

  /** The watched signal that arrived during this call, if any (one umask call while active). */
  caught(): NodeJS.Signals | undefined {
    if (!this.#active || this.#caught !== undefined) return this.#caught;
    const now = umask(this.#sentinel);
    if (now !== this.#sentinel) this.#caught = WATCHED.find(([n]) => n === now)?.[1];
    return this.#caught;
  }

  /** At the end of the call: Node's handlers and the umask back, a caught signal raised again. */
  end(): void {
    if (!this.#active) return;
    this.caught();
    this.#active = false;
    WATCHED.forEach(([n], i) => {
      if (!this.#installed[i]) return;
      this.#installed[i] = false;
      restoreSigaction(n, this.#saved[i]!);
    });
    umask(this.#umask);
    // One more arrival between the check above and the restore is seen here.
    const caught = this.#caught;
    this.#caught = undefined;
    if (caught !== undefined) process.kill(process.pid, caught);
  }
}
