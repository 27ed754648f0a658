// @meshtastic/protobufs 2.7.18 ships no usable declarations (package.json names a missing dist/mod.d.ts,
// and the hashed file it has never declares its namespaces), so the oracle is typed loosely. Test-only.
declare module '@meshtastic/protobufs';
