// PGlite (PostgreSQL compiled to WebAssembly, in-process) dressed as a node-postgres Pool, so
// PostgresSessionStore can run on it without a server: query({ text, values }) → { rows }, and
// connect() lending its one connection. PGlite is one session: its queries run one at a time.
import { PGlite } from '@electric-sql/pglite'

export interface PgLitePool {
  totalCount: number
  idleCount: number
  query(config: { text: string; values?: unknown[] }): Promise<{ rows: Record<string, unknown>[] }>
  connect(): Promise<{ query: PgLitePool['query']; release(): void }>
  listenerCount(event: string): number
  db: PGlite
  end(): Promise<void>
}

export async function pglitePool(): Promise<PgLitePool> {
  const db = await PGlite.create()
  const query: PgLitePool['query'] = async (config) => {
    const r = await db.query<Record<string, unknown>>(config.text, config.values ?? [])
    return { rows: r.rows }
  }
  return {
    totalCount: 1,
    idleCount: 1,
    query,
    connect: async () => ({ query, release: () => {} }),
    listenerCount: () => 1,
    db,
    end: () => db.close(),
  }
}
