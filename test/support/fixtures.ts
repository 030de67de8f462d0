/**
 * Real evidence lives in ../shared/fixtures beside the repository (never copied in). Tests that
 * need it call `fixtureDir()`: when the folder is absent (a user's clone) they skip with a reason;
 * in CI (`SIGIL_REQUIRE_FIXTURES=1`, set by .ci/run) its absence is an error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURES = new URL('../../../shared/fixtures/', import.meta.url).pathname;

export function fixturesAvailable(): boolean {
  if (existsSync(FIXTURES)) return true;
  if (process.env.SIGIL_REQUIRE_FIXTURES === '1') throw new Error(`fixtures folder ${FIXTURES} is missing (required in CI)`);
  return false;
}

/** Options for node:test: `test('x', fixtureTest(), async () => …)` skips when fixtures are absent. */
export function fixtureTest(): { skip: string | false } {
  return { skip: fixturesAvailable() ? false : `no fixtures at ${FIXTURES}` };
}

export function fixture(relativePath: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, relativePath)));
}

export function fixtureText(relativePath: string): string {
  return readFileSync(join(FIXTURES, relativePath), 'utf8');
}
