/**
 * Runs an isomorphic module in headless Chromium (Debian's `chromium`) and returns what it
 * computed. The module is bundled for the browser with esbuild — a `node:` import anywhere in its
 * graph fails the build, which is itself the isomorphism check — served on loopback, and its
 * `run(input)` result is POSTed back as JSON.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export async function bundleForBrowser(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

export async function runInChromium(entry: string, input: unknown, timeoutMs = 90_000): Promise<unknown> {
  const bundle = await bundleForBrowser(entry);
  const page = `<!doctype html><meta charset="utf-8"><script type="module">
    import { run } from '/bundle.js';
    const input = await (await fetch('/input')).json();
    let body;
    try { body = { ok: true, value: await run(input) }; } catch (e) { body = { ok: false, error: String(e && e.stack || e) }; }
    await fetch('/result', { method: 'POST', body: JSON.stringify(body) });
  </script>`;
  let resolveResult: (value: unknown) => void = () => undefined;
  let rejectResult: (error: Error) => void = () => undefined;
  const result = new Promise<unknown>((resolve, reject) => {
    resolveResult = resolve;
    rejectResult = reject;
  });
  const server = createServer((req, res) => {
    if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(page);
    else if (req.url === '/bundle.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    else if (req.url === '/input') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(input));
    else if (req.url === '/result' && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(204).end();
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { ok: boolean; value?: unknown; error?: string };
        if (body.ok) resolveResult(body.value);
        else rejectResult(new Error(`in Chromium: ${body.error}`));
      });
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const profile = mkdtempSync(join(tmpdir(), 'sigil-chromium-'));
  const browser = spawn(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      `http://127.0.0.1:${port}/`,
    ],
    { stdio: 'ignore' },
  );
  const timer = setTimeout(() => rejectResult(new Error(`Chromium gave no result within ${timeoutMs} ms`)), timeoutMs);
  browser.on('exit', (code) => rejectResult(new Error(`Chromium exited (${code}) before reporting`)));
  try {
    return await result;
  } finally {
    clearTimeout(timer);
    browser.removeAllListeners('exit');
    browser.kill('SIGKILL');
    await new Promise((resolve) => (browser.exitCode !== null ? resolve(undefined) : browser.once('exit', resolve)));
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
