import { describe, expect, it } from 'vitest';
import {
  PlacesBySource,
  sourceKey,
  sourceKeyOfEndpoint,
} from '../../../gateway/transport/places-by-source.js';

describe('places of unauthenticated connections, shared between sources', () => {
  it('below the cap every source takes a place; at the cap one source is refused its own next one', () => {
    const places = new PlacesBySource<string>(3);
    for (const s of ['a1', 'a2', 'a3']) expect(places.take('A', s)).toEqual({ ok: true });
    expect(places.take('A', 'a4')).toEqual({ ok: false });
    expect(places.size).toBe(3);
  });

  it('a newcomer from another source takes the oldest place of the source holding the most', () => {
    const places = new PlacesBySource<string>(4);
    for (const s of ['a1', 'a2', 'a3', 'a4']) places.take('A', s);
    expect(places.take('B', 'b1')).toEqual({ ok: true, evict: 'a1' });
    expect(places.take('B', 'b2')).toEqual({ ok: true, evict: 'a2' });
    // A holds two, B two: no more taking from either side.
    expect(places.take('B', 'b3')).toEqual({ ok: false });
    expect(places.take('A', 'a5')).toEqual({ ok: false });
    expect(places.size).toBe(4);
  });

  it('shares converge: three sources against one that filled every place', () => {
    const places = new PlacesBySource<string>(9);
    for (let i = 0; i < 9; i++) places.take('A', `a${i}`);
    let taken = 0;
    for (let round = 0; round < 5; round++)
      for (const source of ['B', 'C', 'D']) if (places.take(source, `${source}${round}`).ok) taken++;
    // A keeps at least as many as each of the others.
    expect(taken).toBeGreaterThanOrEqual(6);
    expect(places.size).toBe(9);
  });

  it('a place given back (twice, or after it was taken away) frees one place only', () => {
    const places = new PlacesBySource<string>(2);
    places.take('A', 'a1');
    places.take('A', 'a2');
    expect(places.take('B', 'b1')).toEqual({ ok: true, evict: 'a1' });
    places.release('A', 'a1'); // the evicted socket's close
    places.release('B', 'b1');
    places.release('B', 'b1');
    expect(places.size).toBe(1);
    expect(places.take('C', 'c1')).toEqual({ ok: true });
    expect(places.take('C', 'c2')).toEqual({ ok: false });
  });
});

describe('the source of a connection', () => {
  it('is its IPv4 address, also when mapped into IPv6', () => {
    expect(sourceKey('192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
  });

  it('is the /64 of an IPv6 address, however it is written', () => {
    const key = '2001:db8:1:2::/64';
    expect(sourceKey('2001:db8:1:2::1')).toBe(key);
    expect(sourceKey('2001:0db8:0001:0002:ffff:1:2:3')).toBe(key);
    expect(sourceKey('2001:DB8:1:2:0:0:0:9%eth0')).toBe(key);
    expect(sourceKey('2001:db8:1:3::1')).not.toBe(key);
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey(undefined)).toBe('unknown');
  });
});

describe('the source of an endpoint as the HTTP listener prints it', () => {
  it('drops the port, and the brackets of an IPv6 address', () => {
    expect(sourceKeyOfEndpoint('192.0.2.7:5432')).toBe('192.0.2.7');
    expect(sourceKeyOfEndpoint('[2001:db8:1:2::1]:443')).toBe('2001:db8:1:2::/64');
    expect(sourceKeyOfEndpoint('[::ffff:192.0.2.7]:80')).toBe('192.0.2.7');
  });
});
