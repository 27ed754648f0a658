// A small seeded PRNG (mulberry32) so that simulations, loss patterns and emulated randomness repeat
// exactly for a given seed. Not for anything security-related.

/** Returns a function yielding uniform floats in [0, 1), fully determined by `seed`. */
export function createSeededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
