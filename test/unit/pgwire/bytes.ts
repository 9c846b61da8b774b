/** A chainable builder of Postgres protocol bytes, for framing tests. */
export class Bytes {
  private parts: Buffer[] = [];

  byte(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }
  char(c: string): this {
    return this.byte(c.charCodeAt(0));
  }
  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  uint32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }
  cstring(s: string): this {
    this.parts.push(Buffer.from(`${s}\0`, 'utf8'));
    return this;
  }
  raw(b: Buffer | string): this {
    this.parts.push(typeof b === 'string' ? Buffer.from(b, 'utf8') : b);
    return this;
  }
  /** Append a typed message whose body is built by `body`; the length is filled in. */
  message(type: string, body: (b: Bytes) => Bytes = (b) => b): this {
    const inner = body(new Bytes()).build();
    return this.char(type)
      .int32(inner.length + 4)
      .raw(inner);
  }
  /** Append an untyped startup-phase packet. */
  packet(body: (b: Bytes) => Bytes): this {
    const inner = body(new Bytes()).build();
    return this.int32(inner.length + 4).raw(inner);
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export const bytes = (): Bytes => new Bytes();
