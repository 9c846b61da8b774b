/**
 * The catalog's query (catalog/catalog.ts says what it reads: names for policy, lineage for masking), run on a fresh connection of
 * the gateway's own: the I/O half of the catalog, kept in transport so masking stays free of sockets.
 */
import { serialize } from 'pg-protocol';
import { CATALOG_SQL, type CatalogRows } from '../catalog/catalog.js';
import { decodeDataRow, decodeFields } from '../pgwire/backend.js';
import { FrameReader } from '../pgwire/frames.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';

/** Run the catalog query on a fresh connection of the gateway's own and close it. */
export async function fetchCatalogRows(target: UpstreamTarget, timeoutMs = 15_000): Promise<CatalogRows> {
  const upstream = await connectUpstream(target, { application_name: 'hoop-gateway catalog' }, timeoutMs);
  const socket = upstream.socket;
  try {
    const results = await new Promise<(string | null)[][][]>((resolve, reject) => {
      const reader = new FrameReader(1 << 30);
      const sets: (string | null)[][][] = [];
      let rows: (string | null)[][] = [];
      // Only statements that return rows make a result set (the leading SET does not).
      let described = false;
      let error: string | undefined;
      const timer = setTimeout(() => reject(new Error('timed out reading the catalog')), timeoutMs);
      const onData = (chunk: Buffer) => {
        try {
          for (const frame of reader.push(chunk)) {
            if (frame.type === 'T') {
              rows = [];
              described = true;
            } else if (frame.type === 'D')
              rows.push(decodeDataRow(frame.body).map((v) => (v === null ? null : v.toString('utf8'))));
            else if (frame.type === 'C' && described) {
              sets.push(rows);
              described = false;
            } else if (frame.type === 'E') error = decodeFields(frame.body).M ?? 'catalog query failed';
            else if (frame.type === 'Z') {
              clearTimeout(timer);
              socket.off('data', onData);
              if (error) reject(new Error(error));
              else resolve(sets);
            }
          }
        } catch (err) {
          clearTimeout(timer);
          reject(err as Error);
        }
      };
      socket.on('data', onData);
      socket.once('error', (err) => reject(err));
      socket.once('close', () => reject(new Error('the database closed the catalog connection')));
      if (upstream.leftover.length) onData(upstream.leftover);
      socket.write(serialize.query(CATALOG_SQL));
    });
    return {
      relations: results[0] ?? [],
      inherits: results[1] ?? [],
      functions: results[2] ?? [],
      namespaces: results[3] ?? [],
      relationNames: results[4] ?? [],
      procs: results[5] ?? [],
      operators: results[6] ?? [],
      types: results[7] ?? [],
      implicitCasts: results[8] ?? [],
      viewDependencies: results[9] ?? [],
    };
  } finally {
    socket.end(serialize.end());
    socket.destroy();
  }
}
