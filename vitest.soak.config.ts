// `npm run test:soak`: the soak tests alone (thousands of VM cycles; about a minute here, not seconds).
import { defineConfig } from 'vitest/config';
import { SOAK_TESTS, shared } from './vitest.config.js';

export default defineConfig({
  // One file at a time: the soaks measure the process's fds and RSS and load both CPUs themselves.
  test: { ...shared, maxWorkers: 1, include: [SOAK_TESTS], exclude: ['**/node_modules/**'] },
});
