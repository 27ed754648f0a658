// Typed errors of the agent's upstream link and enrollment (docs/agent-link.md §Errors).

import { OutpostError } from '../protocol/errors.ts';

export type LinkErrorCode =
  | 'NOT_ENROLLED'
  | 'ALREADY_ENROLLED'
  | 'ENROLL_REFUSED'
  | 'ENROLLMENT_INVALID'
  | 'TOKEN_REFUSED'
  | 'DEVICE_REVOKED'
  | 'UNREACHABLE'
  | 'LINK_DOWN'
  | 'ACK_TIMEOUT';

export class LinkError extends OutpostError<LinkErrorCode> {
  constructor(
    code: LinkErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'LinkError';
  }
}
