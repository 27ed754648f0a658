// The LoRa form of a quorum token (docs/protocol/lora-frames.md §4.6.2) and back: on air only what the call does
// not imply travels; the device rebuilds the full token from its session (tid, device), the call (tool, args) and
// its policy (approver short ids), and then verifies it exactly as quorum.md says. Pure.

import { fromBase64Url, toBase64Url } from './bytes.ts';
import { shortIdOf } from './did-key.ts';
import { ProtocolError } from './errors.ts';
import type { LoraQuorum } from './lora-tool.ts';
import { argsHash, type QuorumPolicy, type QuorumToken } from './quorum.ts';

/**
 * A quorum token in its LoRa form. Approvers named in `policy` travel as 4-byte short ids (4 instead of up to 33
 * bytes each); others by their id. The token's tid, device, tool and argsHash are dropped: the call implies them.
 */
export function toLoraQuorum(token: QuorumToken, policy?: QuorumPolicy): LoraQuorum {
  return {
    requestId: token.request.requestId,
    nonce: token.request.nonce,
    expMs: token.request.expMs,
    approvals: token.approvals.map((a) => {
      const known = policy?.approvers.find((p) => p.id === a.approver);
      return {
        approver: known ? { shortId: shortIdOf(fromBase64Url(known.publicKey)) } : { id: a.approver },
        signature: fromBase64Url(a.sig),
      };
    }),
  };
}

/**
 * Rebuilds the token a LoRa tool.call carries. `tid` and `device` come from the session, `tool` and `args` from the
 * call as received, approver short ids are resolved against `policy`. A short id matching no approver, or several,
 * becomes the id `unresolved.<hex>`, which names no approver with that key: verifyQuorum then refuses the token
 * (fail closed) instead of counting the approval for anyone. Throws QUORUM_MALFORMED for arguments JSON cannot hash.
 */
export function fromLoraQuorum(
  q: LoraQuorum,
  context: {
    readonly tid: string;
    readonly device: string;
    readonly tool: string;
    readonly args: unknown;
    readonly policy?: QuorumPolicy;
  },
): QuorumToken {
  let hash: string;
  try {
    hash = argsHash(context.args);
  } catch (cause) {
    throw new ProtocolError('QUORUM_MALFORMED', 'arguments cannot be hashed', { cause });
  }
  return {
    request: {
      v: 1,
      tid: context.tid,
      requestId: q.requestId,
      device: context.device,
      tool: context.tool,
      argsHash: hash,
      nonce: q.nonce,
      expMs: q.expMs,
    },
    approvals: q.approvals.map((a) => {
      let approver: string;
      if ('id' in a.approver) approver = a.approver.id;
      else {
        const sid = a.approver.shortId;
        const matches = (context.policy?.approvers ?? []).filter(
          (p) => Buffer.compare(shortIdOf(fromBase64Url(p.publicKey)), sid) === 0,
        );
        approver = matches.length === 1 ? matches[0]!.id : `unresolved.${Buffer.from(sid).toString('hex').slice(0, 8)}`;
      }
      return { approver, sig: toBase64Url(a.signature) };
    }),
  };
}
