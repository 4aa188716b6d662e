// `npm run test:soak`: the soak tests alone (thousands of VM cycles; about a minute here, not seconds).
import { defineConfig } from 'vitest/config';
import { SOAK_TESTS, shared } from './vitest.config.js';

export default defineConfig({
  test: { ...shared, include: [SOAK_TESTS], exclude: ['**/node_modules/**'] },
});
