/**
 * A refused request (400, 401, 403, 413, 415, 429), as one structured log line. It names who
 * asked (the principal's label, never a token) and what was refused, so failed sign-ins,
 * cross-user attempts and throttled clients can be alerted on.
 */
export interface AuditEvent {
  type: 'audit';
  event: 'request.refused';
  /** ISO 8601. */
  time: string;
  /** The request's id (the `x-request-id` header and the error body carry it too). */
  requestId: string;
  status: number;
  /** The error code answered (`UNAUTHENTICATED`, `FORBIDDEN`, `OWNERSHIP_MISMATCH`, …). */
  code: string;
  method: string;
  /** The URL path, without the query. */
  path: string;
  /** The principal (`user:alice#1a2b3c4d`, `operator:ops`, `anonymous`), or null when unauthenticated. */
  principal: string | null;
  /** The client's address as this process sees it (a proxy's address behind a proxy). */
  client: string;
  message: string;
}

/** Writes `event` as one JSON line on stdout: the default audit sink. */
export function logAuditEvent(event: AuditEvent): void {
  console.log(JSON.stringify(event));
}
