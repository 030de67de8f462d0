/**
 * Crash testing: with SIGIL_UPDATE_PAUSE_AT=<point> in the environment, the engine stops at that
 * point (download, verify, switch, switched, hook), says so on stderr and waits, so a test can
 * SIGKILL it exactly there and check what the next start recovers. Each point pauses once per
 * process. Without the variable this is a no-op; the variable can only delay an update, never
 * change what it installs.
 */
export const PAUSE_ENV = 'SIGIL_UPDATE_PAUSE_AT';
export const PAUSE_POINTS = ['download', 'verify', 'switch', 'switched', 'hook'] as const;
export type PausePoint = (typeof PAUSE_POINTS)[number];

const reached = new Set<string>();

export async function pausePoint(point: PausePoint): Promise<void> {
  if (process.env[PAUSE_ENV] !== point || reached.has(point)) return;
  reached.add(point);
  process.stderr.write(`sigil: paused at ${point} (${PAUSE_ENV})\n`);
  await new Promise<never>(() => {
    setInterval(() => undefined, 1 << 30);
  });
}
