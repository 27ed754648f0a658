// The demo site's plan: which processes run, with which configuration files, on which ports and radios. Pure: the
// runner (demo-run.ts) writes these files and starts the processes.

export interface DemoRadios {
  /** Emulated radio device paths from `outpost radio sim`. */
  readonly rnode: readonly string[];
  readonly meshtastic: readonly string[];
}

export interface DemoAgentPlan {
  readonly name: string;
  readonly uplink: 'wss' | 'lora';
  /** For LoRa agents: 'rnode' or 'meshtastic'. */
  readonly radio?: 'rnode' | 'meshtastic';
  readonly config: string;
}

/** Time on the simulated air runs this much faster, so that LoRa traffic is visible within seconds. */
export const DEMO_TIME_SCALE = 10;

const RNODE_PARAMS = `region = "EU868"
frequency_hz = 867200000
bandwidth_hz = 125000
spreading_factor = 8
coding_rate = 5
tx_power_dbm = 14`;

/** A reading from a small program, as a real sensor script would print it (no shell: awk's own arithmetic). */
function sampled(name: string, unit: string, base: number, spread: number, periodS: number, priority: number): string {
  return `[[streams]]
name = "${name}"
unit = "${unit}"
period_s = ${periodS}
priority = ${priority}
source = { kind = "exec", argv = ["/usr/bin/awk", "BEGIN { srand(); printf \\"%.1f\\\\n\\", ${base} + rand() * ${spread} }"] }
`;
}

const TOOLS = `[[tools]]
name = "env.sample"
description = "Read the air temperature now."
safety_class = "read_only"
output_schema = { type = "object", properties = { celsius = { type = "number" } }, required = ["celsius"] }
[tools.exec]
argv = ["/usr/bin/awk", "BEGIN {{ srand(); printf \\"{{\\\\\\"celsius\\\\\\": %.1f}}\\\\n\\", 18 + rand() * 6 }}"]
output = "json"

[[tools]]
name = "valve.open"
description = "Open the irrigation valve for some seconds (physical: needs two approvals)."
safety_class = "physical_actuation"
input_schema = { type = "object", properties = { seconds = { type = "integer", minimum = 1, maximum = 600 } }, required = ["seconds"], additionalProperties = false }
output_schema = { type = "object", properties = { opened = { type = "boolean" } }, required = ["opened"] }
[tools.exec]
argv = ["/bin/echo", "{{\\"opened\\": true}}"]
output = "json"
`;

/** agent.toml of one demo agent; paths are relative to the file's directory. */
export function agentConfig(a: {
  name: string;
  uplink: 'wss' | 'lora';
  radioPath?: string;
  radioKind?: 'rnode' | 'meshtastic';
}): string {
  const lora = a.uplink === 'lora';
  const radio =
    !lora || !a.radioPath
      ? ''
      : a.radioKind === 'meshtastic'
        ? `[[radios]]
kind = "meshtastic"
path = "${a.radioPath}"
role = "uplink"
region = "EU868"
`
        : `[[radios]]
kind = "rnode"
path = "${a.radioPath}"
role = "uplink"
${RNODE_PARAMS}
`;
  return `# Demo agent ${a.name}: written by \`outpost demo\`.
[agent]
name = "${a.name}"

[paths]
state_dir = "${a.name}"
socket = "${a.name}/agent.sock"

[mcp]
http_enabled = false

[metrics]
enabled = false

[uplink]
mode = "${a.uplink}"
${
  lora
    ? `
[lora]
time_scale = ${DEMO_TIME_SCALE}
ack_timeout_s = 60
`
    : ''
}
${sampled('env.temperature', 'Cel', 18, 6, lora ? 20 : 5, 5)}
${sampled('soil.moisture', '%', 20, 30, lora ? 120 : 10, 3)}
# Readings pushed by other programs: \`outpost telemetry push site.counter VALUE\` (the soak test drives load here).
[[streams]]
name = "site.counter"
unit = "1"
priority = 1
source = { kind = "ingest" }

${TOOLS}
${radio}`;
}

/** gateway.toml: both radios, its backhaul through the demo's proxy. */
export function gatewayConfig(g: {
  proxyPort: number;
  cpUrl: string;
  tid: string;
  rnodePath: string;
  meshtasticPath: string;
}): string {
  return `# The demo gateway: written by \`outpost demo\`.
[gateway]
name = "demo-gw"
state_dir = "gateway"

[upstream]
url = "ws://127.0.0.1:${g.proxyPort}/v1/hub/${g.tid}"
tenant = "${g.tid}"
http_url = "${g.cpUrl}"
heartbeat_s = 5
reconnect_initial_s = 0.5
reconnect_max_s = 2

[[radio]]
name = "rnode0"
kind = "rnode"
path = "${g.rnodePath}"
${RNODE_PARAMS}

[[radio]]
name = "mesh0"
kind = "meshtastic"
path = "${g.meshtasticPath}"

[simulation]
time_scale = ${DEMO_TIME_SCALE}
`;
}
