/**
 * One string names a TPM everywhere (CLI flag, config, the SIGIL_TPM environment variable):
 *   swtpm://host:port       swtpm's raw TCP port; its control port is port + 1 (default 127.0.0.1:2321)
 *   mssim://host:port       MS/IBM simulator; platform port is port + 1 (default 127.0.0.1:2321)
 *   device:///dev/tpmrm0    a Linux TPM character device
 * With no URI and no SIGIL_TPM, the machine's own TPM (device:///dev/tpmrm0) is used.
 */
import { SigilError } from '../../core/errors.ts';
import { DEFAULT_TPM_DEVICE, DeviceTransport } from './device.ts';
import { MssimTransport } from './mssim.ts';
import { SwtpmControl, SwtpmTransport } from './swtpm.ts';
import type { TpmTransport } from './transport.ts';

export const DEFAULT_TPM_URI = `device://${DEFAULT_TPM_DEVICE}`;
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 2321;

export type TpmLocation =
  | { kind: 'swtpm'; host: string; port: number; controlPort: number }
  | { kind: 'mssim'; host: string; port: number; platformPort: number }
  | { kind: 'device'; path: string };

export interface OpenTransportOptions {
  timeoutMs?: number;
}

function invalid(uri: string, reason: string): SigilError {
  return new SigilError('tpm.uri_invalid', `"${uri}" is not a TPM URI: ${reason} (use swtpm://host:port, mssim://host:port or device:///dev/tpmrm0)`, { uri });
}

/** The URI to use when none is given: SIGIL_TPM, else the local device. */
export function defaultTpmUri(): string {
  const fromEnv = process.env.SIGIL_TPM?.trim();
  return fromEnv ? fromEnv : DEFAULT_TPM_URI;
}

export function parseTpmUri(uri: string): TpmLocation {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw invalid(uri, 'it cannot be parsed');
  }
  if (url.search || url.hash || url.username || url.password) throw invalid(uri, 'query, fragment and credentials are not supported');
  const scheme = url.protocol.slice(0, -1);
  if (scheme === 'device') {
    if (url.host) throw invalid(uri, 'a device URI has no host (three slashes: device:///dev/tpmrm0)');
    const path = decodeURIComponent(url.pathname);
    if (path === '' || path === '/') return { kind: 'device', path: DEFAULT_TPM_DEVICE };
    if (!path.startsWith('/')) throw invalid(uri, 'the device path must be absolute');
    return { kind: 'device', path };
  }
  if (scheme !== 'swtpm' && scheme !== 'mssim') throw invalid(uri, `unknown scheme "${scheme}"`);
  if (url.pathname !== '' && url.pathname !== '/') throw invalid(uri, 'a TCP TPM URI has no path');
  const host = url.hostname === '' ? DEFAULT_HOST : url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port === '' ? DEFAULT_PORT : Number(url.port);
  // The second port (control or platform) is port + 1, so the first cannot be the last one.
  if (!Number.isInteger(port) || port < 1 || port > 65534) throw invalid(uri, 'the port must be 1 to 65534');
  return scheme === 'swtpm' ? { kind: 'swtpm', host, port, controlPort: port + 1 } : { kind: 'mssim', host, port, platformPort: port + 1 };
}

/** Open (lazily: nothing connects until the first command) the TPM a URI names. */
export function openTransport(uri: string = defaultTpmUri(), options: OpenTransportOptions = {}): TpmTransport {
  const location = parseTpmUri(uri);
  switch (location.kind) {
    case 'swtpm':
      return new SwtpmTransport({ host: location.host, port: location.port, timeoutMs: options.timeoutMs });
    case 'mssim':
      return new MssimTransport({ host: location.host, port: location.port, timeoutMs: options.timeoutMs });
    case 'device':
      return new DeviceTransport(location.path);
  }
}

/** The control channel of a swtpm:// URI (power cycle, locality, shutdown). */
export function openSwtpmControl(uri: string = defaultTpmUri(), options: OpenTransportOptions = {}): SwtpmControl {
  const location = parseTpmUri(uri);
  if (location.kind !== 'swtpm') throw invalid(uri, 'only swtpm:// URIs have a control channel');
  return new SwtpmControl({ host: location.host, port: location.controlPort, timeoutMs: options.timeoutMs });
}
