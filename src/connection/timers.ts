/** Named one-shot timers owned by one object: setting a name replaces its old timer; clearAll() leaves none. */
export class Timers {
  readonly #timers = new Map<string, NodeJS.Timeout>();

  set(name: string, ms: number, fn: () => void): void {
    this.clear(name);
    const t = setTimeout(() => {
      this.#timers.delete(name);
      fn();
    }, ms);
    this.#timers.set(name, t);
  }

  /**
   * Like `set`, but a timer of that name already pending is re-armed in place (`Timeout.refresh()`): no new timer
   * or closure per call. For watchdogs pushed back on every frame. The delay and callback of the pending timer stay.
   */
  rearm(name: string, ms: number, fn: () => void): void {
    const t = this.#timers.get(name);
    if (t !== undefined) t.refresh();
    else this.set(name, ms, fn);
  }

  clear(name: string): void {
    const t = this.#timers.get(name);
    if (t !== undefined) {
      clearTimeout(t);
      this.#timers.delete(name);
    }
  }

  has(name: string): boolean {
    return this.#timers.has(name);
  }

  clearAll(): void {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }

  get size(): number {
    return this.#timers.size;
  }
}
