/**
 * The gateway's own queries upstream (its catalog reads, a session's starting settings) begin with this
 * comment, so a DBA reading PostgreSQL's log — and the write-ahead tests comparing that log with the
 * audit log — can tell them from the statements of clients, which are the ones recorded.
 */
export const OWN_QUERY_MARK = '/* hoop-gateway */ ';
