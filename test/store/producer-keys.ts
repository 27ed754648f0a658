// Keys shared by the durability tests and their producer child (test fixtures, not secrets).

export const AUDIT_KEY = new Uint8Array(32).fill(11);
export const SIGNER_SEED = new Uint8Array(32).fill(12);
