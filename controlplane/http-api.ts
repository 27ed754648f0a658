// The HTTP API as one function over Fetch API Request/Response (Node 22, Workers and Deno all have them): routes are
// thin — decode the body, authenticate, call the logic module, encode — and errors become statuses in one place
// (errors.ts). Every body is read with a size bound before it is parsed.

import { PROMETHEUS_CONTENT_TYPE } from '../protocol/metrics.ts';
import {
  AcceptManifestRequest,
  AnchorRequest,
  ApproveRequest,
  CreateTenantRequest,
  DeviceChallengeRequest,
  DeviceTokenRequest,
  decodeBody,
  EnrollRequest,
  EnrollTokenRequest,
  MintTokenRequest,
  PolicyRequest,
  RevokeDeviceRequest,
  RevokeTokenRequest,
} from './api-schemas.ts';
import { approve, denyApproval, getApproval, listApprovals } from './approvals.ts';
import { anchorCheckpoint, exportAuditSigned, recentAudit } from './audit-export.ts';
import { authenticate, type Principal, requireOperator } from './auth.ts';
import { mintCallerToken, revokeToken } from './caller-tokens.ts';
import type { ControlPlaneContext } from './context.ts';
import { DASHBOARD_ASSETS } from './dashboard-assets.generated.ts';
import { acceptManifest, findTenantDevice, listDevices, listRevocations, revokeDevice, showDevice } from './devices.ts';
import { didDocument, llmsTxt, mcpDiscovery, tenantDidDocument } from './discovery.ts';
import { enrollDevice, issueDeviceChallenge, mintEnrollToken, refreshDeviceToken } from './enrollment.ts';
import { ControlPlaneError, errorBody, httpStatusFor } from './errors.ts';
import { eventStream } from './event-stream.ts';
import { handleMcpRequest } from './mcp-gateway.ts';
import { getPolicy, setPolicy } from './policy.ts';
import type { ApprovalStatus } from './ports.ts';
import { createTenantAs } from './tenants.ts';

export interface RequestInfo {
  /** The peer's address (for rate limits and audit). */
  readonly address: string;
}

export interface HttpApiOptions {
  readonly version: string;
  /** Prometheus exposition of the host's registry. */
  readonly renderMetrics: () => string;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(`${JSON.stringify(body)}\n`, {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  });
}

/**
 * The dashboard's pages: same-origin everything, no inline script or style, never framed. Only `connect-src 'self'`
 * for the API and its event stream; nothing from another origin, so the page works off-grid.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

function dashboardAsset(request: Request, name: string): Response {
  const asset = Object.hasOwn(DASHBOARD_ASSETS, name) ? DASHBOARD_ASSETS[name] : undefined;
  if (!asset) throw new ControlPlaneError('NOT_FOUND', 'no such dashboard file');
  const headers = {
    'content-type': asset.type,
    'content-security-policy': DASHBOARD_CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cache-control': 'no-cache',
    etag: asset.etag,
  };
  if (request.headers.get('if-none-match') === asset.etag) return new Response(null, { status: 304, headers });
  return new Response(asset.body, { status: 200, headers });
}

function text(status: number, body: string, contentType: string): Response {
  return new Response(body, { status, headers: { 'content-type': contentType } });
}

/** Reads the body as UTF-8 text, refusing more than `maxBytes` without buffering the excess. */
export async function readBody(request: Request, maxBytes: number): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw new ControlPlaneError('BODY_TOO_LARGE', `request body exceeds ${maxBytes} bytes`);
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new ControlPlaneError('BODY_TOO_LARGE', `request body exceeds ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(all);
  } catch {
    throw new ControlPlaneError('BAD_REQUEST', 'request body is not UTF-8');
  }
}

function intParam(url: URL, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,16}$/.test(raw)) throw new ControlPlaneError('BAD_REQUEST', `${name} must be a non-negative integer`);
  return Math.min(Number(raw), max);
}

const APPROVAL_STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'used', 'expired', 'denied'];

type Handler = (request: Request, url: URL, params: string[], info: RequestInfo) => Promise<Response>;

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  /** Label for metrics (never the raw path, which holds ids). */
  readonly name: string;
  readonly handle: Handler;
}

/** Creates the request handler. */
export function createHttpApi(ctx: ControlPlaneContext, options: HttpApiOptions) {
  const max = ctx.settings.limits.maxBodyBytes;
  const body = <S extends Parameters<typeof decodeBody>[0]>(schema: S, request: Request) =>
    readBody(request, max).then((t) => decodeBody(schema, t, max));
  const auth = (request: Request, info: RequestInfo, allowMachine = false): Promise<Principal> =>
    authenticate(ctx, request.headers.get('authorization'), info.address, { allowMachine });
  const operator = async (request: Request, info: RequestInfo) => {
    const p = await auth(request, info);
    requireOperator(p);
    return p;
  };
  const param = (s: string | undefined) => {
    try {
      return decodeURIComponent(s ?? '');
    } catch {
      throw new ControlPlaneError('BAD_REQUEST', 'bad percent-encoding in the path');
    }
  };

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: /^\/healthz$/,
      name: 'healthz',
      handle: async () => json(200, { ok: true, version: options.version }),
    },
    // The dashboard: static files; everything it shows comes from the authenticated API below.
    {
      method: 'GET',
      pattern: /^\/(?:dashboard)?$/,
      name: 'dashboard_redirect',
      handle: async () => new Response(null, { status: 302, headers: { location: '/dashboard/' } }),
    },
    {
      method: 'GET',
      pattern: /^\/dashboard\/(index\.html|style\.css|app\.js)?$/,
      name: 'dashboard',
      handle: async (r, _u, [file]) => dashboardAsset(r, file ?? 'index.html'),
    },
    {
      method: 'GET',
      pattern: /^\/llms\.txt$/,
      name: 'llms',
      handle: async () => text(200, llmsTxt(ctx.settings, options.version), 'text/plain; charset=utf-8'),
    },
    {
      method: 'GET',
      pattern: /^\/\.well-known\/jwks\.json$/,
      name: 'jwks',
      handle: async () => json(200, ctx.issuer.jwks(), { 'cache-control': 'max-age=60' }),
    },
    {
      method: 'GET',
      pattern: /^\/\.well-known\/did\.json$/,
      name: 'did',
      handle: async () =>
        json(
          200,
          didDocument(ctx.settings, { identity: ctx.vault.identity.publicKey, x25519: ctx.vault.lora.publicKey }),
        ),
    },
    {
      method: 'GET',
      pattern: /^\/\.well-known\/mcp\.json$/,
      name: 'mcp_discovery',
      handle: async () => json(200, mcpDiscovery(ctx.settings, options.version)),
    },
    {
      method: 'GET',
      pattern: /^\/tenants\/([a-z0-9-]{1,63})\/did\.json$/,
      name: 'tenant_did',
      handle: async (_r, _u, [slug]) => {
        const tenant = (await ctx.store.listTenants()).find((t) => t.name === slug);
        if (!tenant) throw new ControlPlaneError('TENANT_UNKNOWN', 'no such tenant');
        return json(200, tenantDidDocument(ctx.settings, tenant));
      },
    },
    {
      method: 'GET',
      pattern: /^\/metrics$/,
      name: 'metrics',
      handle: async () => text(200, options.renderMetrics(), PROMETHEUS_CONTENT_TYPE),
    },
    // Devices
    {
      method: 'POST',
      pattern: /^\/v1\/devices\/enroll$/,
      name: 'enroll',
      handle: async (r, _u, _p, info) => json(201, await enrollDevice(ctx, await body(EnrollRequest, r), info.address)),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/devices\/challenge$/,
      name: 'device_challenge',
      handle: async (r) => json(200, issueDeviceChallenge(ctx, await body(DeviceChallengeRequest, r))),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/devices\/token$/,
      name: 'device_token',
      handle: async (r, _u, _p, info) =>
        json(200, await refreshDeviceToken(ctx, await body(DeviceTokenRequest, r), info.address)),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/devices\/audit-checkpoint$/,
      name: 'anchor',
      handle: async (r, _u, _p, info) => {
        const p = await auth(r, info, true);
        return json(200, await anchorCheckpoint(ctx, p, await body(AnchorRequest, r)));
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/revocations$/,
      name: 'revocations',
      handle: async (r, u, _p, info) => {
        const p = await auth(r, info, true);
        const after = intParam(u, 'after', 0, Number.MAX_SAFE_INTEGER);
        return json(200, { revocations: await listRevocations(ctx, p, after, intParam(u, 'limit', 500, 1000)) });
      },
    },
    // Operators
    {
      method: 'GET',
      pattern: /^\/v1\/operator\/whoami$/,
      name: 'whoami',
      handle: async (r, _u, _p, info) => {
        const p = await auth(r, info);
        const tenant = await ctx.store.getTenant(p.tid);
        return json(200, {
          kind: p.kind,
          subject: p.subject,
          tid: p.tid,
          tenant: tenant?.name ?? null,
          did: tenant?.did ?? null,
        });
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/operator\/tenants$/,
      name: 'tenant_create',
      handle: async (r, _u, _p, info) => {
        const p = await operator(r, info);
        const created = await createTenantAs(ctx, p, (await body(CreateTenantRequest, r)).name);
        return json(201, { tenant: created.tenant, operatorKey: created.operatorKey, keyId: created.keyId });
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/operator\/enroll-token$/,
      name: 'enroll_token',
      handle: async (r, _u, _p, info) => {
        const p = await auth(r, info);
        return json(201, await mintEnrollToken(ctx, p, await body(EnrollTokenRequest, r)));
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/operator\/devices$/,
      name: 'devices',
      handle: async (r, _u, _p, info) => json(200, { devices: await listDevices(ctx, await auth(r, info)) }),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/operator\/devices\/([^/]+)$/,
      name: 'device',
      handle: async (r, _u, [ref], info) => json(200, await showDevice(ctx, await auth(r, info), param(ref))),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/operator\/devices\/([^/]+)\/manifest\/accept$/,
      name: 'manifest_accept',
      handle: async (r, _u, [ref], info) => {
        const p = await auth(r, info);
        const req = await body(AcceptManifestRequest, r);
        return json(200, await acceptManifest(ctx, p, param(ref), req.manifestHash));
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/operator\/devices\/([^/]+)\/revoke$/,
      name: 'device_revoke',
      handle: async (r, _u, [ref], info) => {
        const p = await auth(r, info);
        const req = await body(RevokeDeviceRequest, r);
        return json(200, await revokeDevice(ctx, p, param(ref), req.reason ?? 'revoked by operator'));
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/operator\/policy$/,
      name: 'policy_get',
      handle: async (r, _u, _p, info) => json(200, await getPolicy(ctx, await auth(r, info))),
    },
    {
      method: 'PUT',
      pattern: /^\/v1\/operator\/policy$/,
      name: 'policy_set',
      handle: async (r, _u, _p, info) => {
        const p = await auth(r, info);
        return json(200, await setPolicy(ctx, p, await body(PolicyRequest, r)));
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/operator\/tokens$/,
      name: 'token_mint',
      handle: async (r, _u, _p, info) => {
        const p = await auth(r, info);
        return json(201, await mintCallerToken(ctx, p, await body(MintTokenRequest, r)));
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/operator\/tokens\/revoke$/,
      name: 'token_revoke',
      handle: async (r, _u, _p, info) => {
        const p = await auth(r, info);
        return json(200, await revokeToken(ctx, p, await body(RevokeTokenRequest, r)));
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/operator\/keys\/rotate$/,
      name: 'keys_rotate',
      handle: async (r, _u, _p, info) => {
        const p = await operator(r, info);
        if (p.kind !== 'operator' || !p.root)
          throw new ControlPlaneError('FORBIDDEN', 'only a root operator key rotates keys');
        await readBody(r, max);
        const plan = await ctx.issuer.rotate({ force: true });
        return json(200, { steps: plan.steps, jwks: ctx.issuer.jwks() });
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/operator\/telemetry$/,
      name: 'telemetry',
      handle: async (r, u, _p, info) => {
        const p = await operator(r, info);
        const ref = u.searchParams.get('device');
        const device = ref ? (await findTenantDevice(ctx, p.tid, ref)).device : undefined;
        const stream = u.searchParams.get('stream') ?? undefined;
        const after = u.searchParams.has('after') ? intParam(u, 'after', 0, Number.MAX_SAFE_INTEGER) : undefined;
        const rows = await ctx.store.listTelemetry({
          tid: p.tid,
          ...(device ? { device } : {}),
          ...(stream ? { stream } : {}),
          ...(after !== undefined ? { afterSeq: after } : {}),
          ...(u.searchParams.get('newest') === '1' ? { newest: true } : {}),
          limit: intParam(u, 'limit', 100, 10_000),
        });
        return json(200, { records: rows, total: await ctx.store.countTelemetry(p.tid, device, stream) });
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/operator\/audit\/recent$/,
      name: 'audit_recent',
      handle: async (r, u, _p, info) =>
        json(200, await recentAudit(ctx, await operator(r, info), intParam(u, 'limit', 50, 500))),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/operator\/events$/,
      name: 'events',
      handle: async (r, _u, _p, info) => eventStream(ctx, await operator(r, info), r.signal),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/operator\/audit\/export$/,
      name: 'audit_export',
      handle: async (r, _u, _p, info) => json(200, await exportAuditSigned(ctx, await operator(r, info))),
    },
    // Approvals
    {
      method: 'GET',
      pattern: /^\/v1\/approvals$/,
      name: 'approvals',
      handle: async (r, u, _p, info) => {
        const status = u.searchParams.get('status');
        if (status !== null && !(APPROVAL_STATUSES as readonly string[]).includes(status)) {
          throw new ControlPlaneError('BAD_REQUEST', `status is one of ${APPROVAL_STATUSES.join(', ')}`);
        }
        return json(200, {
          approvals: await listApprovals(ctx, await auth(r, info), (status ?? undefined) as ApprovalStatus | undefined),
        });
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/approvals\/([A-Za-z0-9_-]{22})$/,
      name: 'approval',
      handle: async (r, _u, [id], info) => json(200, await getApproval(ctx, await auth(r, info), id!)),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/approvals\/([A-Za-z0-9_-]{22})\/approve$/,
      name: 'approve',
      handle: async (r, _u, [id], info) => {
        const p = await auth(r, info);
        return json(200, await approve(ctx, p, id!, await body(ApproveRequest, r)));
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/approvals\/([A-Za-z0-9_-]{22})\/deny$/,
      name: 'deny',
      handle: async (r, _u, [id], info) => {
        const p = await auth(r, info);
        return json(200, await denyApproval(ctx, p, id!, await body(ApproveRequest, r)));
      },
    },
  ];

  /** Serves one request; never rejects. */
  return async function handle(request: Request, info: RequestInfo): Promise<Response> {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return json(400, { error: { code: 'BAD_REQUEST', message: 'bad URL' } });
    }
    const path = url.pathname;
    if (path === '/mcp') {
      const response = await handleMcpRequest(ctx, request, info.address, options.version).catch((e) => {
        ctx.log.error('mcp.internal', { err: e as Error });
        return json(500, errorBody(e));
      });
      ctx.metrics.httpRequests.inc({ route: 'mcp', status: String(response.status) });
      return response;
    }
    const matching = routes.filter((r) => r.pattern.test(path));
    let name = 'unknown';
    let response: Response;
    try {
      if (matching.length === 0) throw new ControlPlaneError('NOT_FOUND', `no route ${path}`);
      const route = matching.find((r) => r.method === request.method);
      if (!route) {
        name = matching[0]!.name;
        throw new ControlPlaneError(
          'METHOD_NOT_ALLOWED',
          `use ${[...new Set(matching.map((r) => r.method))].join(', ')}`,
        );
      }
      name = route.name;
      const params = route.pattern.exec(path)!.slice(1);
      response = await route.handle(request, url, params, info);
    } catch (e) {
      const status = httpStatusFor(e);
      if (status >= 500) ctx.log.error('http.internal', { route: name, err: e as Error });
      const headers: Record<string, string> = {};
      if (e instanceof ControlPlaneError && e.code === 'LOCKED_OUT') {
        headers['retry-after'] = String(Math.ceil(Number(e.details.retryAfterMs ?? 1000) / 1000));
      }
      if (status === 401) headers['www-authenticate'] = 'Bearer realm="outpost"';
      response = json(status, errorBody(e), headers);
    }
    ctx.metrics.httpRequests.inc({ route: name, status: String(response.status) });
    return response;
  };
}
