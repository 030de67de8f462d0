/**
 * Memoization for the costly, purely content-determined steps (DER parsing of certificates and
 * CRLs, signature checks between two fixed certificates). Keys are the exact input text or the
 * parsed objects themselves, so a hit can only return what the same bytes produced before;
 * time-dependent checks (validity, CRL freshness) are never cached. A verifier that sees the same
 * PCK chain and collateral again skips about 15 ms of @peculiar/x509 parsing per quote.
 */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }
}

/** Pairs (a, b) for which a check passed, held weakly. */
export class PassedPairs<A extends object, B extends object> {
  private readonly pairs = new WeakMap<A, WeakSet<B>>();

  has(a: A, b: B): boolean {
    return this.pairs.get(a)?.has(b) ?? false;
  }

  add(a: A, b: B): void {
    let set = this.pairs.get(a);
    if (!set) this.pairs.set(a, (set = new WeakSet()));
    set.add(b);
  }
}
