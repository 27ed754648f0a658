// Typed errors of the agent's upstream link and enrollment (docs/agent-link.md §Errors).

import { OutpostError } from '../protocol/errors.ts';

export type LinkErrorCode =
  | 'ALREADY_ENROLLED'
  | 'ENROLL_REFUSED'
  | 'ENROLLMENT_INVALID'
  | 'TOKEN_REFUSED'
  | 'DEVICE_REVOKED'
  | 'UNREACHABLE'
  | 'LINK_DOWN';

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
