// Fills an exec tool's argv template from validated arguments. Pure. No shell is ever involved: each
// template element becomes exactly one argv element whatever the argument holds.

import { AgentError } from './errors.ts';

export type ArgvTemplate = readonly (string | readonly string[])[];

const TOKEN = /\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]/g;

/** Splits one element into literal text and placeholder names; throws on a stray brace. */
function parseElement(element: string): ({ text: string } | { name: string })[] {
  const parts: ({ text: string } | { name: string })[] = [];
  let last = 0;
  for (const m of element.matchAll(TOKEN)) {
    if (m.index > last) parts.push({ text: element.slice(last, m.index) });
    if (m[0] === '{{') parts.push({ text: '{' });
    else if (m[0] === '}}') parts.push({ text: '}' });
    else if (m[1] !== undefined) parts.push({ name: m[1] });
    else {
      throw new AgentError('CONFIG_INVALID', `argv element ${JSON.stringify(element)} has a stray "${m[0]}"`, {
        details: { element },
      });
    }
    last = m.index + m[0].length;
  }
  if (last < element.length) parts.push({ text: element.slice(last) });
  return parts;
}

/** Argument names a template refers to. Throws CONFIG_INVALID for a malformed template. */
export function templateNames(template: ArgvTemplate): Set<string> {
  const names = new Set<string>();
  template.forEach((item, i) => {
    for (const element of typeof item === 'string' ? [item] : item) {
      for (const p of parseElement(element)) {
        if ('name' in p) {
          if (i === 0) {
            throw new AgentError('CONFIG_INVALID', 'argv[0] (the program) cannot hold a placeholder', {
              details: { element },
            });
          }
          names.add(p.name);
        }
      }
    }
  });
  return names;
}

function argText(name: string, value: unknown, wholeElement: boolean): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') {
    if (value.includes('\u0000')) {
      throw new AgentError('TOOL_ARGS_INVALID', `argument "${name}" holds a NUL byte`, { details: { arg: name } });
    }
    // A whole-element string that starts with "-" would be read as an option by most programs.
    if (wholeElement && value.startsWith('-')) {
      throw new AgentError('TOOL_ARGS_INVALID', `argument "${name}" may not start with "-"`, {
        details: { arg: name },
      });
    }
    return value;
  }
  throw new AgentError('TOOL_ARGS_INVALID', `argument "${name}" must be a string, number or boolean to fill argv`, {
    details: { arg: name },
  });
}

function renderElement(element: string, args: Readonly<Record<string, unknown>>): string | undefined {
  const parts = parseElement(element);
  const whole = parts.length === 1 && 'name' in parts[0]!;
  let out = '';
  for (const p of parts) {
    if ('text' in p) out += p.text;
    else if (!Object.hasOwn(args, p.name) || args[p.name] === undefined) return undefined;
    else out += argText(p.name, args[p.name], whole);
  }
  return out;
}

/**
 * The argv for `args`. A plain element naming an absent argument throws TOOL_ARGS_INVALID; a group
 * (nested array) naming an absent argument is left out whole, so optional flags come with their value.
 */
export function renderArgv(template: ArgvTemplate, args: Readonly<Record<string, unknown>>): string[] {
  const argv: string[] = [];
  for (const item of template) {
    if (typeof item === 'string') {
      const v = renderElement(item, args);
      if (v === undefined) {
        throw new AgentError('TOOL_ARGS_INVALID', `argv element ${JSON.stringify(item)} names a missing argument`, {
          details: { element: item },
        });
      }
      argv.push(v);
    } else {
      const group = item.map((e) => renderElement(e, args));
      if (group.every((v): v is string => v !== undefined)) argv.push(...group);
    }
  }
  return argv;
}
