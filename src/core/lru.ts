/**
 * A bounded map for the content-keyed caches of the core (parsed certificates, signature results,
 * imported keys): when full, the least recently used entry goes. Recency is refreshed only once
 * the map is more than half full, so a hit on a lightly used cache costs a single lookup.
 */
export class Lru<V> {
  private readonly map = new Map<string, V>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined && this.map.size > this.max / 2) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }
}
