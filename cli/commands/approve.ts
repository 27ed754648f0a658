// `outpost approver keygen` and `outpost approve REQUEST`: an approver's key lives in a 0600 file on the approver's
// machine; the CLI shows what is asked, checks the arguments hash itself, signs locally and sends only the signature.

import { resolve } from 'node:path';
import type { ApprovalView } from '../../controlplane/approvals.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import { canonicalBytes } from '../../protocol/canonical-json.ts';
import { OutpostError } from '../../protocol/errors.ts';
import {
  ApprovalRequest,
  approverPublicKey,
  argsHash,
  QUORUM_APPROVAL_CONTEXT,
  QUORUM_DENIAL_CONTEXT,
} from '../../protocol/quorum.ts';
import { signEd25519 } from '../../protocol/signing.ts';
import { loadOrCreateKeyFile } from '../../store/key-file.ts';
import { type Command, optString, print } from '../command.ts';
import { CLIENT_OPTIONS, controlPlaneClient, readSecret, when } from '../controlplane-setup.ts';

export const approveCommands: Command[] = [
  {
    path: ['approver', 'keygen'],
    summary: 'create an approver key file (0600) and print its public key for the tenant’s policy',
    usage: '--out FILE',
    options: { out: { type: 'string' } },
    async run(ctx) {
      const out = optString(ctx, 'out');
      if (!out) throw new OutpostError('USAGE', 'give --out FILE for the new key');
      const path = resolve(ctx.io.cwd, out);
      const key = loadOrCreateKeyFile(path);
      if (!key.created) throw new OutpostError('CANT_CREATE', `${path} exists; it was left untouched`);
      const publicKey = approverPublicKey(key.seed);
      print(ctx, { keyFile: path, publicKey }, () =>
        [
          `approver key written to ${path} (keep it: only its holder can approve with it)`,
          `public key: ${publicKey}`,
          `an operator adds it: outpost controlplane policy add-approver ID --public-key=${publicKey}`,
        ].join('\n'),
      );
      return 0;
    },
  },
  decisionCommand('approve'),
  decisionCommand('deny'),
];

/** `approve` and `deny`: the same checks, a signature under the decision's own context label (quorum.md §4, §4.1). */
function decisionCommand(decision: 'approve' | 'deny'): Command {
  const approving = decision === 'approve';
  return {
    path: [decision],
    summary: approving
      ? 'sign an approval request with your approver key (kept on this machine) and send the signature'
      : 'refuse an approval request, signed with your approver key (kept on this machine); the request closes',
    usage: 'REQUEST --approver ID --key-file FILE [--token-file FILE] [--url URL]',
    options: {
      ...CLIENT_OPTIONS,
      approver: { type: 'string' },
      'key-file': { type: 'string' },
      'token-file': { type: 'string' },
    },
    async run(ctx) {
      const id = ctx.positionals[0];
      const approver = optString(ctx, 'approver');
      const keyFile = optString(ctx, 'key-file') ?? ctx.io.env.OUTPOST_APPROVER_KEY_FILE;
      if (!id || !approver || !keyFile) {
        throw new OutpostError(
          'USAGE',
          'give the request id, --approver ID and --key-file FILE (or OUTPOST_APPROVER_KEY_FILE)',
        );
      }
      const tokenFile = optString(ctx, 'token-file') ?? ctx.io.env.OUTPOST_APPROVER_TOKEN_FILE;
      const client = controlPlaneClient(
        ctx,
        tokenFile ? { credential: readSecret(resolve(ctx.io.cwd, tokenFile), 'the approver token') } : {},
      );
      const view = await client.request<ApprovalView>('GET', `/v1/approvals/${encodeURIComponent(id)}`);
      const request = ApprovalRequest.parse(view.request);
      // Never sign a hash we did not compute: the arguments shown must be the ones the request commits to.
      if (argsHash(view.args) !== request.argsHash) {
        throw new OutpostError(
          'APPROVAL_MISMATCH',
          'the arguments shown do not match the request’s hash: refusing to sign',
        );
      }
      if (view.status !== 'pending') throw new OutpostError('APPROVAL_CLOSED', `request ${id} is ${view.status}`);
      const seed = loadOrCreateKeyFile(resolve(ctx.io.cwd, keyFile), { create: false }).seed;
      const context = approving ? QUORUM_APPROVAL_CONTEXT : QUORUM_DENIAL_CONTEXT;
      const sig = toBase64Url(signEd25519(seed, context, canonicalBytes(request)));
      const after = await client.request<ApprovalView>('POST', `/v1/approvals/${encodeURIComponent(id)}/${decision}`, {
        approver,
        sig,
      });
      print(ctx, after, () =>
        [
          `${approving ? 'approved' : 'denied'} as ${approver}: ${after.deviceName}.${after.tool} ${JSON.stringify(after.args)} (${after.safetyClass})`,
          `  requested by ${after.requester}; ${after.approvers.length} of ${after.needed} approvals; ${after.status}; expires ${when(after.expMs)}`,
        ].join('\n'),
      );
      return 0;
    },
  };
}
