// The dashboard page: signs in with an operator key, reads the control plane's API, redraws each section when the
// event stream says its topic changed (and every 15 s regardless, for ages and link states).

import { ApiError, api, followEvents, savedToken, saveToken } from './api.ts';
import { fill, h } from './dom.ts';
import {
  ago,
  type Histogram,
  histogramBars,
  histogramMean,
  numericValue,
  type Point,
  plotPath,
  toolsByClass,
} from './format.ts';
import { type ApprovalRequestView, SigningError, signDecision } from './sign.ts';

interface RadioReport {
  name: string;
  kind: string;
  state: string;
  ready: boolean;
  airtime: { windowMs: number; budgetUsed: number; totalMs: number };
  frames: { received: number; sent: number; dropped: number };
  rssiDbm: Histogram | null;
  snrDb: Histogram | null;
  lastRxMs: number | null;
}

interface Device {
  device: string;
  name: string;
  role: string;
  status: string;
  online: boolean;
  lastSeenMs: number | null;
  manifest: {
    accepted: string | null;
    pending: {
      hash: string;
      sinceMs: number;
      added: string[];
      removed: string[];
      reclassed: string[];
      downgrades: string[];
    } | null;
  };
  tools: { name: string; safetyClass: string }[];
  streams: string[];
  lora: { reachable: boolean; heardVia: { gateway: string; radio: string; atMs: number } | null } | null;
  gateway?: { atMs: number; radios: RadioReport[]; uplinkBacklog: number; downlinkBacklog: number } | null;
}

interface Approval extends ApprovalRequestView {
  requestId: string;
  status: string;
  deviceName: string;
  tool: string;
  safetyClass: string;
  requester: string;
  createdMs: number;
  expMs: number;
  needed: number;
  approvers: string[];
  deniedBy: string | null;
}

interface TelemetryRow {
  device: string;
  seq: number;
  stream: string;
  ts: number;
  value: unknown;
}

const state = {
  devices: [] as Device[],
  approverIds: [] as string[],
  /** What the user chose on each approval card: cards are redrawn on every event, choices must survive that. */
  choices: new Map<string, { approver?: string; keyFile?: File }>(),
};

function notice(text: string, kind: 'ok' | 'error' = 'ok'): void {
  fill('notice', text ? h('span', { class: kind, 'data-testid': 'notice' }, text) : null);
}

function linkOf(d: Device): { text: string; cls: string } {
  if (d.status !== 'active') return { text: d.status, cls: 'bad' };
  if (d.online) return { text: 'online (WSS)', cls: 'good' };
  if (d.lora?.reachable) {
    const via = d.lora.heardVia;
    return { text: via ? `via LoRa (${via.radio})` : 'via LoRa', cls: 'good' };
  }
  return { text: 'offline', cls: 'warn' };
}

// ---- devices ----

async function acceptManifest(d: Device): Promise<void> {
  if (!d.manifest.pending) return;
  try {
    await api('POST', `/v1/operator/devices/${encodeURIComponent(d.device)}/manifest/accept`, {
      manifestHash: d.manifest.pending.hash,
    });
    notice(`accepted the new capabilities of ${d.name}`);
  } catch (e) {
    notice(`accept failed: ${(e as Error).message}`, 'error');
  }
  await refreshDevices();
}

function deviceRow(d: Device, now: number): HTMLElement {
  const link = linkOf(d);
  const pending = d.manifest.pending;
  return h(
    'tr',
    { 'data-testid': 'device-row', 'data-device': d.name },
    h('td', {}, h('strong', {}, d.name), h('div', { class: 'muted mono' }, d.device.slice(0, 24), '…')),
    h('td', {}, d.role),
    h('td', {}, h('span', { class: `badge ${link.cls}`, 'data-testid': 'link' }, link.text)),
    h('td', {}, ago(d.lastSeenMs, now)),
    h(
      'td',
      {},
      ...toolsByClass(d.tools).map(([cls, names]) =>
        h('div', {}, h('span', { class: `class ${cls}` }, cls), ' ', names.join(', ')),
      ),
      d.tools.length === 0 ? h('span', { class: 'muted' }, 'no tools') : null,
    ),
    h(
      'td',
      {},
      pending
        ? h(
            'div',
            { class: 'pending', 'data-testid': 'pending-manifest' },
            h(
              'div',
              {},
              [
                pending.added.length ? `+ ${pending.added.join(', ')}` : '',
                pending.removed.length ? `− ${pending.removed.join(', ')}` : '',
                pending.reclassed.length ? `reclassed ${pending.reclassed.join(', ')}` : '',
              ]
                .filter(Boolean)
                .join('; ') || 'changed',
            ),
            h('button', { onclick: () => void acceptManifest(d) }, 'Accept capabilities'),
          )
        : h('span', { class: 'muted' }, d.manifest.accepted ? 'accepted' : 'none yet'),
    ),
  );
}

async function refreshDevices(): Promise<void> {
  const { devices } = await api<{ devices: Device[] }>('GET', '/v1/operator/devices');
  state.devices = devices;
  const now = Date.now();
  fill(
    'devices',
    devices.length === 0
      ? h('p', { class: 'muted' }, 'No devices yet: enroll one with an enroll token.')
      : h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['device', 'role', 'link', 'last seen', 'tools by safety class', 'capabilities'].map((t) =>
                h('th', {}, t),
              ),
            ),
          ),
          h('tbody', {}, ...devices.map((d) => deviceRow(d, now))),
        ),
  );
  renderRadios(now);
}

// ---- radios ----

function gauge(fraction: number): HTMLElement {
  const pct = Math.max(0, Math.min(1, fraction));
  return h(
    'svg',
    { class: 'gauge', viewBox: '0 0 100 8', role: 'img', 'aria-label': `${(fraction * 100).toFixed(1)} % of budget` },
    h('rect', { x: 0, y: 0, width: 100, height: 8, class: 'gauge-bg' }),
    h('rect', {
      x: 0,
      y: 0,
      width: (pct * 100).toFixed(1),
      height: 8,
      class: fraction > 0.9 ? 'gauge-hot' : 'gauge-fill',
    }),
  );
}

function bars(hist: Histogram | null, unit: string): HTMLElement {
  const data = histogramBars(hist);
  const max = Math.max(1, ...data.map((b) => b.count));
  const mean = histogramMean(hist);
  return h(
    'div',
    { class: 'hist' },
    h(
      'svg',
      { viewBox: `0 0 ${Math.max(1, data.length) * 10} 30`, class: 'bars', role: 'img' },
      ...data.map((b, i) =>
        h(
          'rect',
          { x: i * 10 + 1, y: 30 - (b.count / max) * 30, width: 8, height: (b.count / max) * 30, class: 'bar' },
          h('title', {}, `${b.label} ${unit}: ${b.count}`),
        ),
      ),
    ),
    h('span', { class: 'muted' }, mean === null ? `no ${unit} yet` : `mean ${mean.toFixed(1)} ${unit}`),
  );
}

function renderRadios(now: number): void {
  const gateways = state.devices.filter((d) => d.role === 'gateway');
  if (gateways.length === 0) {
    fill('radios', h('p', { class: 'muted' }, 'No gateways enrolled.'));
    return;
  }
  fill(
    'radios',
    ...gateways.map((g) =>
      h(
        'div',
        { class: 'card', 'data-testid': 'gateway', 'data-gateway': g.name },
        h(
          'h3',
          {},
          g.name,
          ' ',
          h('span', { class: `badge ${g.online ? 'good' : 'warn'}` }, g.online ? 'backhaul up' : 'backhaul down'),
        ),
        g.gateway
          ? h(
              'div',
              {},
              h(
                'p',
                { class: 'muted' },
                `report ${ago(g.gateway.atMs, now)}; uplink backlog ${g.gateway.uplinkBacklog}, downlink backlog ${g.gateway.downlinkBacklog}`,
              ),
              ...g.gateway.radios.map((r) =>
                h(
                  'div',
                  { class: 'radio', 'data-testid': 'radio', 'data-radio': r.name },
                  h(
                    'div',
                    {},
                    h('strong', {}, r.name),
                    ` ${r.kind} `,
                    h('span', { class: `badge ${r.ready ? 'good' : 'bad'}` }, r.state),
                  ),
                  h(
                    'div',
                    { class: 'airtime' },
                    'airtime ',
                    gauge(r.airtime.budgetUsed),
                    ` ${(r.airtime.budgetUsed * 100).toFixed(1)} % of the duty-cycle budget`,
                  ),
                  h('div', {}, `frames in ${r.frames.received}, out ${r.frames.sent}, dropped ${r.frames.dropped}`),
                  h('div', { class: 'row' }, bars(r.rssiDbm, 'dBm'), bars(r.snrDb, 'dB SNR')),
                ),
              ),
            )
          : h('p', { class: 'muted' }, 'no radio report from this gateway yet'),
      ),
    ),
  );
}

// ---- approvals ----

async function decide(a: Approval, decision: 'approve' | 'deny'): Promise<void> {
  const choice = state.choices.get(a.requestId) ?? {};
  const approver = choice.approver ?? state.approverIds[0];
  const file = choice.keyFile;
  if (!approver) {
    notice('this tenant has no approvers yet', 'error');
    return;
  }
  if (!file) {
    notice('choose your approver key file first', 'error');
    return;
  }
  const key = new Uint8Array(await file.arrayBuffer());
  try {
    const sig = await signDecision(a, key, decision);
    const after = await api<Approval>('POST', `/v1/approvals/${a.requestId}/${decision}`, { approver, sig });
    notice(
      decision === 'approve'
        ? `approved as ${approver}: ${after.approvers.length} of ${after.needed} (${after.status})`
        : `denied as ${approver}`,
    );
  } catch (e) {
    notice(
      e instanceof SigningError || e instanceof ApiError ? `${e.code}: ${e.message}` : (e as Error).message,
      'error',
    );
  } finally {
    key.fill(0);
  }
  await refreshApprovals();
}

function approvalCard(a: Approval, now: number): HTMLElement {
  const choice = state.choices.get(a.requestId) ?? {};
  state.choices.set(a.requestId, choice);
  const select = h(
    'select',
    {
      'data-testid': 'approver',
      onchange: (e: Event) => {
        choice.approver = (e.target as HTMLSelectElement).value;
      },
    },
    ...state.approverIds.map((id) => h('option', { value: id, selected: id === choice.approver }, id)),
  );
  const chosen = h('span', { class: 'muted', 'data-testid': 'key-chosen' }, choice.keyFile ? choice.keyFile.name : '');
  const form = h(
    'div',
    { class: 'decide' },
    h('label', {}, 'approver ', select),
    h(
      'label',
      {},
      ' key file ',
      h('input', {
        type: 'file',
        'data-testid': 'key-file',
        onchange: (e: Event) => {
          const file = (e.target as HTMLInputElement).files?.[0];
          if (file) choice.keyFile = file;
          chosen.textContent = file ? file.name : '';
        },
      }),
    ),
    chosen,
    h('button', { 'data-testid': 'approve', onclick: () => void decide(a, 'approve') }, 'Approve'),
    h('button', { class: 'danger', 'data-testid': 'deny', onclick: () => void decide(a, 'deny') }, 'Deny'),
  );
  return h(
    'div',
    { class: 'card', 'data-testid': 'approval', 'data-request': a.requestId },
    h('h3', {}, `${a.deviceName}.${a.tool}`, ' ', h('span', { class: `class ${a.safetyClass}` }, a.safetyClass)),
    h('pre', { class: 'args' }, JSON.stringify(a.args, null, 2)),
    h(
      'p',
      { class: 'muted' },
      `requested by ${a.requester} ${ago(a.createdMs, now)}; ${a.approvers.length} of ${a.needed} approvals`,
      a.approvers.length ? ` (${a.approvers.join(', ')})` : '',
      `; expires in ${Math.max(0, Math.round((a.expMs - now) / 60_000))} min`,
    ),
    form,
  );
}

async function refreshApprovals(): Promise<void> {
  const [{ approvals }, policy] = await Promise.all([
    api<{ approvals: Approval[] }>('GET', '/v1/approvals'),
    api<{ policy: { approvers: { id: string }[] } | null }>('GET', '/v1/operator/policy').catch(() => ({
      policy: null,
    })),
  ]);
  state.approverIds = policy.policy?.approvers.map((a) => a.id) ?? [];
  const now = Date.now();
  const pending = approvals.filter((a) => a.status === 'pending');
  for (const id of state.choices.keys()) if (!pending.some((a) => a.requestId === id)) state.choices.delete(id);
  const closed = approvals.filter((a) => a.status !== 'pending').slice(0, 8);
  fill(
    'approvals',
    pending.length === 0
      ? h('p', { class: 'muted', 'data-testid': 'no-approvals' }, 'Nothing waits for approval.')
      : null,
    ...pending.map((a) => approvalCard(a, now)),
    closed.length
      ? h(
          'ul',
          { class: 'closed' },
          ...closed.map((a) =>
            h(
              'li',
              { 'data-testid': 'closed-approval', 'data-request': a.requestId, 'data-status': a.status },
              `${a.deviceName}.${a.tool} — ${a.status}`,
              a.deniedBy ? ` by ${a.deniedBy}` : a.approvers.length ? ` (${a.approvers.join(', ')})` : '',
            ),
          ),
        )
      : null,
  );
}

// ---- telemetry ----

function plot(points: Point[]): HTMLElement {
  const g = plotPath(points, 240, 48);
  return h(
    'svg',
    { viewBox: '0 0 240 48', class: 'plot', role: 'img' },
    h('path', { d: g.path, class: 'line' }),
    h('title', {}, `min ${g.min}, max ${g.max}`),
  );
}

async function refreshTelemetry(): Promise<void> {
  const devices = state.devices.filter((d) => d.role === 'device' && d.streams.length > 0);
  const cards = await Promise.all(
    devices.map(async (d) => {
      const { records, total } = await api<{ records: TelemetryRow[]; total: number }>(
        'GET',
        `/v1/operator/telemetry?device=${encodeURIComponent(d.device)}&limit=300&newest=1`,
      );
      const byStream = new Map<string, TelemetryRow[]>();
      for (const r of records) byStream.set(r.stream, [...(byStream.get(r.stream) ?? []), r]);
      return h(
        'div',
        { class: 'card', 'data-testid': 'telemetry', 'data-device': d.name },
        h('h3', {}, d.name, ' ', h('span', { class: 'muted', 'data-testid': 'telemetry-total' }, `${total} records`)),
        ...[...byStream.entries()].map(([stream, rows]) => {
          const points = rows.flatMap((r) => {
            const v = numericValue(r.value);
            return v === null ? [] : [{ t: r.ts, v }];
          });
          const last = rows[rows.length - 1]!;
          return h(
            'div',
            { class: 'stream', 'data-stream': stream },
            h('div', {}, h('span', { class: 'mono' }, stream), ' ', h('strong', {}, String(last.value))),
            points.length > 1 ? plot(points) : null,
          );
        }),
        records.length === 0 ? h('p', { class: 'muted' }, 'no telemetry yet') : null,
      );
    }),
  );
  fill('telemetry', ...(cards.length ? cards : [h('p', { class: 'muted' }, 'No telemetry streams yet.')]));
}

// ---- audit ----

interface AuditEntry {
  seq: number;
  ts: number;
  kind: string;
  actor: string;
  subject: string;
  decision: string;
  reason: string;
}

async function refreshAudit(): Promise<void> {
  try {
    const a = await api<{ headSeq: number; chainVerified: boolean; entries: AuditEntry[] }>(
      'GET',
      '/v1/operator/audit/recent?limit=40',
    );
    fill(
      'audit',
      h(
        'p',
        {},
        h(
          'span',
          { class: `badge ${a.chainVerified ? 'good' : 'bad'}`, 'data-testid': 'chain' },
          a.chainVerified ? 'chain verified' : 'CHAIN BROKEN',
        ),
        ` head #${a.headSeq}`,
      ),
      h(
        'table',
        { class: 'audit' },
        h(
          'tbody',
          {},
          ...a.entries
            .slice()
            .reverse()
            .map((e) =>
              h(
                'tr',
                { 'data-testid': 'audit-entry', 'data-kind': e.kind },
                h('td', { class: 'mono' }, `#${e.seq}`),
                h('td', {}, new Date(e.ts).toLocaleTimeString()),
                h('td', {}, e.kind),
                h('td', { class: `decision ${e.decision}` }, e.decision),
                h('td', {}, e.reason),
                h('td', { class: 'mono' }, e.actor),
                h('td', { class: 'mono' }, e.subject),
              ),
            ),
        ),
      ),
    );
  } catch (e) {
    fill('audit', h('p', { class: 'muted' }, `The audit chain is for root operators (${(e as Error).message}).`));
  }
}

// ---- the page ----

let lastTelemetry = 0;
let telemetryTimer: ReturnType<typeof setTimeout> | undefined;

/** Telemetry changes all the time: redraw it at most every 2 s. */
function telemetrySoon(): void {
  if (telemetryTimer) return;
  const wait = Math.max(0, 2000 - (Date.now() - lastTelemetry));
  telemetryTimer = setTimeout(() => {
    telemetryTimer = undefined;
    lastTelemetry = Date.now();
    void refreshTelemetry().catch(() => undefined);
  }, wait);
}

async function refresh(topics: readonly string[]): Promise<void> {
  const all = topics.includes('all');
  const jobs: Promise<void>[] = [];
  if (all || topics.includes('devices')) jobs.push(refreshDevices());
  if (all || topics.includes('approvals') || topics.includes('calls')) jobs.push(refreshApprovals());
  if (all || topics.includes('audit')) jobs.push(refreshAudit());
  await Promise.all(jobs.map((j) => j.catch((e) => onApiError(e))));
  if (all || topics.includes('telemetry') || topics.includes('devices')) telemetrySoon();
}

function onApiError(e: unknown): void {
  if (e instanceof ApiError && e.status === 401) {
    saveToken(null);
    showLogin('That key was refused. Paste an operator key.');
  }
}

let running: AbortController | undefined;

async function start(): Promise<void> {
  let who: { tenant: string | null; subject: string; kind: string };
  try {
    who = await api('GET', '/v1/operator/whoami');
  } catch (e) {
    saveToken(null);
    showLogin(e instanceof ApiError && e.status === 401 ? 'That key was refused.' : (e as Error).message);
    return;
  }
  document.getElementById('login')!.hidden = true;
  document.getElementById('main')!.hidden = false;
  fill('who', `tenant ${who.tenant ?? '?'} · ${who.subject}`);
  running?.abort();
  running = new AbortController();
  const signal = running.signal;
  void followEvents(
    signal,
    (topics) => void refresh(topics),
    (live) =>
      fill(
        'live',
        h('span', { class: `badge ${live ? 'good' : 'warn'}`, 'data-testid': 'live' }, live ? 'live' : 'reconnecting'),
      ),
  );
  // Ages and link states move without events: a slow full refresh keeps them true.
  const tick = setInterval(() => void refresh(['all']), 15_000);
  signal.addEventListener('abort', () => clearInterval(tick));
}

function showLogin(message: string): void {
  running?.abort();
  document.getElementById('main')!.hidden = true;
  document.getElementById('login')!.hidden = false;
  fill('login-message', message);
}

function boot(): void {
  const form = document.getElementById('login-form') as HTMLFormElement;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = document.getElementById('token') as HTMLInputElement;
    saveToken(input.value.trim());
    input.value = '';
    void start();
  });
  document.getElementById('sign-out')!.addEventListener('click', () => {
    saveToken(null);
    showLogin('Signed out.');
  });
  if (savedToken()) void start();
  else showLogin('Paste an operator key (outpost controlplane init prints where it is).');
}

boot();
