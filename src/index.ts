// hyperlight-ts public API: the only entry point of the package.
export { HyperlightError, ConfigInvalidError, GuestMemoryBoundsError, ElfInvalidError } from './errors.js';
export * from './kvm/index.js';
export { GuestMemory, PAGE_SIZE } from './mem/guest-memory.js';
