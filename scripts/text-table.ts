// Tables for people: aligned plain text for terminals and logs, and Markdown for docs/benchmarks.md.

export type Align = 'left' | 'right';

export interface Column {
  readonly title: string;
  readonly align?: Align;
}

/** Aligned plain-text table with a rule under the header. */
export function textTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (text: string, i: number) =>
    columns[i]!.align === 'right' ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
  const lines = [
    columns.map((c, i) => cell(c.title, i)).join('  '),
    widths.map((w) => '─'.repeat(w)).join('  '),
    ...rows.map((r) => columns.map((_, i) => cell(r[i] ?? '', i)).join('  ')),
  ];
  return `${lines.map((l) => l.trimEnd()).join('\n')}\n`;
}

const escapeCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** GitHub-flavoured Markdown table. */
export function markdownTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const head = `| ${columns.map((c) => escapeCell(c.title)).join(' | ')} |`;
  const rule = `| ${columns.map((c) => (c.align === 'right' ? '---:' : '---')).join(' | ')} |`;
  const body = rows.map((r) => `| ${columns.map((_, i) => escapeCell(r[i] ?? '')).join(' | ')} |`);
  return `${[head, rule, ...body].join('\n')}\n`;
}
