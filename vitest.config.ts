import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/** Long-running soak tests: `npm run test:soak` (vitest.soak.config.ts), not `npm test`. */
export const SOAK_TESTS = 'test/soak/**/*.test.ts';

/** Settings both configurations share. */
export const shared = {
  testTimeout: 60_000,
  hookTimeout: 60_000,
  pool: 'forks',
  // Vitest's default is one worker less than the CPUs: a single one on a 2-CPU machine, which
  // then idles while a test waits for a child process (the CLI, gcc, tsc, npm). Two or more.
  maxWorkers: Math.max(2, availableParallelism() - 1),
  reporters: ['default'],
} as const;

export default defineConfig({
  test: {
    ...shared, include: ['test/**/*.test.ts'], exclude: ['**/node_modules/**', SOAK_TESTS],
    globalSetup: ['test/global-setup.ts'],
  },
});
