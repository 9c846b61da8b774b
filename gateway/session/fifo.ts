/**
 * A first-in first-out queue whose `shift` costs the same however long the queue is. `Array.shift`
 * moves every element once an array is large, which made a pipeline of n messages cost n².
 */
export class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  /** Queued items `marks` was true for when they were pushed: lets a caller skip a linear scan. */
  private readonly marked = new Set<T>();

  constructor(private readonly marks?: (item: T) => boolean) {}

  /** How many queued items were marked when pushed. */
  get markedCount(): number {
    return this.marked.size;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    if (this.marks?.(item)) this.marked.add(item);
    this.items.push(item);
  }

  /** The oldest item, left in the queue. */
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.marked.delete(item);
    this.items[this.head] = undefined as T; // let it be collected
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Put `next` where `item` is (false if it is not queued). Linear: for rare paths only. */
  replace(item: T, next: T): boolean {
    const at = this.items.indexOf(item, this.head);
    if (at < 0) return false;
    this.items[at] = next;
    if (this.marked.delete(item) && this.marks?.(next)) this.marked.add(next);
    return true;
  }

  /** Whether any queued item matches. Linear: for rare paths only. */
  some(test: (item: T) => boolean): boolean {
    for (let i = this.head; i < this.items.length; i++) if (test(this.items[i]!)) return true;
    return false;
  }

  /** The queued items, oldest first. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i]!;
  }

  /** Remove and return every item, oldest first. */
  drain(): T[] {
    const all = this.items.slice(this.head);
    this.marked.clear();
    this.items = [];
    this.head = 0;
    return all;
  }
}
