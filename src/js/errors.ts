// Errors of JsSandbox (docs/errors.md): a JavaScript exception in the guest, the engine's memory limit, a value that cannot cross.
import { HyperlightError } from '../errors.js';

/**
 * Guest JavaScript threw (or did not parse): `jsName`, `jsMessage` and `jsStack` are the guest's own (`SyntaxError`,
 * `TypeError`, a user class's name, ...); `message` is `jsName: jsMessage`. The sandbox is unharmed and serves the next call.
 */
export class JsError extends HyperlightError {
  /** The thrown error's `name` in the guest (`Error` for a thrown value that is no Error). */
  readonly jsName: string;
  /** The thrown error's `message` in the guest (for a thrown value that is no Error: its String()). */
  readonly jsMessage: string;
  /** The guest's stack trace (QuickJS's format, `    at f (<sandbox>:3)` lines); may be empty. */
  readonly jsStack: string;

  constructor(jsName: string, jsMessage: string, jsStack: string) {
    super('ERR_JS_EXCEPTION', `${jsName}: ${jsMessage}`);
    this.jsName = jsName;
    this.jsMessage = jsMessage;
    this.jsStack = jsStack;
    // The Node-side stack says where the call was made; the guest's own stack follows it.
    if (jsStack) this.stack = `${this.stack ?? ''}\n  guest stack (${jsName}):\n${jsStack.replace(/\s+$/, '')}`;
  }
}

/**
 * The engine ran out of memory: the script asked for more than `memoryLimit` (or the guest heap holds). The sandbox is put
 * back to its loaded state (also under `keepState`) and serves the next call.
 */
export class JsMemoryLimitError extends HyperlightError {
  /** The configured engine memory limit, in bytes. */
  readonly memoryLimit: number;

  constructor(memoryLimit: number, message: string) {
    super('ERR_JS_OUT_OF_MEMORY', `JavaScript ran out of memory (memoryLimit ${memoryLimit} bytes): ${message}; ` +
      'raise memoryLimit or make the script use less');
    this.memoryLimit = memoryLimit;
  }
}

/** A value given to the guest (an argument, a host function's result) cannot cross as JSON: a BigInt, a cycle, too large. */
export class JsValueError extends HyperlightError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_JS_VALUE', message, options);
  }
}
