// Ambient type of the untyped `elfy` package: its exports are narrowed where they are used (elfy-reader.ts).
declare module 'elfy' {
  const elfy: unknown;
  export default elfy;
}
