// Letting the application's SIGINT/SIGTERM listeners run while a guest spins. Node runs a
// listener only when its event loop turns, never during a synchronous call: so while a call
// runs, those signals get a handler that records them, the run loop ends the call when one
// arrived, and the signal is raised again for Node once its own handler is back. No guests.
import { sigaction } from '../kvm/layouts.generated.js';
import { SIGINT, SIGTERM, recordSignal, restoreSigaction, takeRecordedSignal } from '../kvm/libc.js';

const WATCHED: ReadonlyArray<readonly [number, NodeJS.Signals]> = [[SIGINT, 'SIGINT'], [SIGTERM, 'SIGTERM']];

/**
 * One run loop's watch for SIGINT and SIGTERM. It is active during a call only while the
 * process listens for one of them (`process.on('SIGINT', ...)`); otherwise the signal's
 * usual behaviour applies and this costs two listener counts per call.
 *
 * How a signal is recorded without a native addon: the handler is 27 bytes of x86-64
 * machine code that sets a flag in memory the watch reads (libc.ts: recordSignal). An
 * arrival also makes a blocked KVM_RUN return, so the run loop sees it at the next exit;
 * checking costs one memory read per watched signal, no system call.
 */
export class ProcessSignalWatch {
  /** Node's handlers while ours are installed; made at the first call the process listens during. */
  #saved: Uint8Array[] | undefined;
  readonly #installed: boolean[] = WATCHED.map(() => false);
  #active = false;
  #caught: NodeJS.Signals | undefined;

  /** At the start of a call or init, on the vCPU thread. */
  begin(): void {
    if (!WATCHED.some(([, name]) => process.listenerCount(name) > 0)) return;
    this.#caught = undefined;
    const saved = (this.#saved ??= WATCHED.map(() => new Uint8Array(sigaction.size)));
    WATCHED.forEach(([n, name], i) => {
      if (process.listenerCount(name) === 0) return;
      this.#installed[i] = recordSignal(n, saved[i]!);
      this.#active ||= this.#installed[i]!;
    });
  }

  /** The watched signal that arrived during this call, if any. */
  caught(): NodeJS.Signals | undefined {
    if (!this.#active || this.#caught !== undefined) return this.#caught;
    for (let i = 0; i < WATCHED.length; i++) {
      if (this.#installed[i] && takeRecordedSignal(WATCHED[i]![0])) {
        this.#caught = WATCHED[i]![1];
        break;
      }
    }
    return this.#caught;
  }

  /** At the end of the call: Node's handlers back, then each signal caught raised again for them. */
  end(): void {
    if (!this.#active) return;
    WATCHED.forEach(([n], i) => {
      if (this.#installed[i]) restoreSigaction(n, this.#saved![i]!);
    });
    // Flags are read after the restore, so an arrival just before it is not lost.
    const raise = WATCHED.filter(([n, name], i) => this.#installed[i] && (takeRecordedSignal(n) || this.#caught === name));
    this.#active = false;
    this.#installed.fill(false);
    this.#caught = undefined;
    for (const [, name] of raise) process.kill(process.pid, name);
  }
}
