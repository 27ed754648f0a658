// The list of generated files and how each is rendered from its source of truth.

export interface GeneratedFile {
  /** Path relative to the repository root. */
  path: string;
  render(): string;
}

export function generatedFiles(): GeneratedFile[] {
  return [];
}
