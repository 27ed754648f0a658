// The list of generated files and how each is rendered from its source of truth.

import { configJsonSchema } from '../agent/config.ts';
import { manifestJsonSchema } from '../protocol/manifest.ts';
import { renderDashboardAssets } from './dashboard-bundle.ts';

export interface GeneratedFile {
  /** Path relative to the repository root. */
  path: string;
  render(): string;
}

export function generatedFiles(): GeneratedFile[] {
  return [
    {
      path: 'docs/protocol/manifest.schema.json',
      render: () => `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`,
    },
    {
      path: 'docs/agent-config.schema.json',
      render: () => `${JSON.stringify(configJsonSchema(), null, 2)}\n`,
    },
    {
      path: 'controlplane/dashboard-assets.generated.ts',
      render: renderDashboardAssets,
    },
  ];
}
