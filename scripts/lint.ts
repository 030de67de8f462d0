/**
 * Project lint rules that the type checker cannot express (DESIGN.md section 2):
 * - the isomorphic folders (core, tpm structures/marshal/policy calculator, eventlog, evidence,
 *   measure, policy) import no `node:` module and use no `Buffer`;
 * - no source file grows past 600 lines (a sign it holds two things);
 * - relative imports name their `.ts` file (Node's type stripping needs it).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const ISOMORPHIC = [
  'src/core',
  'src/tpm/structures',
  'src/tpm/marshal',
  'src/tpm/policy',
  'src/tpm/constants.ts',
  'src/tpm/algorithms.ts',
  'src/tpm/names.ts',
  'src/tpm/command.ts',
  'src/tpm/handles.ts',
  'src/tpm/response-codes.ts',
  'src/tpm/templates.ts',
  'src/tpm/jwk.ts',
  'src/eventlog',
  'src/evidence',
  'src/measure',
  'src/policy',
];

function walk(path: string, out: string[] = []): string[] {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return out;
  }
  if (stat.isFile()) {
    if (path.endsWith('.ts')) out.push(path);
    return out;
  }
  for (const entry of readdirSync(path)) walk(join(path, entry), out);
  return out;
}

const problems: string[] = [];
for (const file of ISOMORPHIC.flatMap((p) => walk(join(root, p)))) {
  const text = readFileSync(file, 'utf8');
  if (/from\s+['"]node:|require\(['"]node:|import\(['"]node:/.test(text)) problems.push(`${relative(root, file)}: isomorphic code imports a node: module`);
  if (/\bBuffer\./.test(text) || /\bBuffer\b\s*[<(]/.test(text)) problems.push(`${relative(root, file)}: isomorphic code uses Buffer`);
}
for (const file of ['src', 'test', 'bench', 'scripts'].flatMap((p) => walk(join(root, p)))) {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n').length;
  if (lines > 600) problems.push(`${relative(root, file)}: ${lines} lines (split it)`);
  for (const m of text.matchAll(/from\s+['"](\.{1,2}\/[^'"]+)['"]/g)) {
    if (!m[1].endsWith('.ts') && !m[1].endsWith('.json')) problems.push(`${relative(root, file)}: relative import without .ts: ${m[1]}`);
  }
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  console.error(`lint: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log('lint: ok');
