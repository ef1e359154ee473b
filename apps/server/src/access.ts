import { UserIdSchema, type ValidationIssue } from '@ctx/core';
import type { Principal } from './auth.js';
import { HttpProblem } from './http-errors.js';
import { decodeUserHeader, USER_HEADER } from './validation.js';

/** What a request does to sessions. */
export type Access = 'read' | 'write';

/** Who a request acts for, once the principal's rights are checked. */
export type Actor =
  /** Acts as this user: the store refuses sessions of other users (403 `OWNERSHIP_MISMATCH`). */
  | { kind: 'user'; userId: string }
  /** Reads every session: an operator, or an anonymous read without the user header. */
  | { kind: 'everyone' }
  /** The user header is missing or malformed: these issues go into the request's 400. */
  | { kind: 'invalid'; issues: ValidationIssue[] };

function readHeader(value: string | undefined): string | ValidationIssue[] | undefined {
  if (value === undefined) return undefined;
  try {
    const decoded = decodeUserHeader(value);
    const result = UserIdSchema.safeParse(decoded);
    if (result.success) return result.data;
    return result.error.issues.map((issue) => ({
      path: `header.${USER_HEADER}`,
      message: issue.message,
    }));
  } catch (error) {
    const issues = (error as { issues?: ValidationIssue[] }).issues;
    if (Array.isArray(issues)) return issues;
    throw error;
  }
}

function required(principal: Principal): ValidationIssue[] {
  return [
    {
      path: `header.${USER_HEADER}`,
      message:
        principal.role === 'service'
          ? 'required with a service token: the user this call is made for'
          : 'required on writes: the id of the user this session belongs to',
    },
  ];
}

/**
 * Decides who a request acts for, from its principal and the `x-ctx-user` header:
 *
 * | principal | header | acts as |
 * |---|---|---|
 * | `user` (bound to U) | absent or U | U; another user → 403 `FORBIDDEN` |
 * | `service` | required (400 without) | the named user |
 * | `operator` | ignored | everyone, reads only; a write → 403 `FORBIDDEN` |
 * | `anonymous` (no auth) | required on writes, optional on reads | the named user; a read without it reads everyone |
 */
export function resolveActor(
  principal: Principal,
  header: string | undefined,
  access: Access,
): Actor {
  if (principal.role === 'operator') {
    if (access === 'write') {
      throw new HttpProblem(
        403,
        'FORBIDDEN',
        'An operator token reads every session but writes none: post turns and delete with a user or service token',
      );
    }
    return { kind: 'everyone' };
  }
  const named = readHeader(header);
  if (Array.isArray(named)) return { kind: 'invalid', issues: named };
  if (principal.role === 'user') {
    const own = principal.userId as string;
    if (named !== undefined && named !== own) {
      throw new HttpProblem(
        403,
        'FORBIDDEN',
        `This token acts only as user "${own}", but the ${USER_HEADER} header names "${named}"`,
      );
    }
    return { kind: 'user', userId: own };
  }
  if (named !== undefined) return { kind: 'user', userId: named };
  if (principal.role === 'service' || access === 'write') {
    return { kind: 'invalid', issues: required(principal) };
  }
  return { kind: 'everyone' };
}

/** Checks `?user=` of a list against the actor: a user lists only their own sessions. */
export function listedUser(actor: Actor, requested: string | undefined): string | undefined {
  if (actor.kind !== 'user') return requested;
  if (requested !== undefined && requested !== actor.userId) {
    throw new HttpProblem(
      403,
      'OWNERSHIP_MISMATCH',
      `This call acts as user "${actor.userId}" but ?user= asks for the sessions of "${requested}": a user lists only their own sessions`,
    );
  }
  return actor.userId;
}
