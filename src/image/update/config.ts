/**
 * The engine's configuration, kept in the update database's `settings` table (written by
 * `sigil update init`), and what it opens: the vendor trust bundle, this device's identity (its
 * certificate from the TPM, or a certificate file on a machine without one), the anti-rollback
 * floor (the TPM counter, or the floor file) and the registry.
 *
 * Settings: registry (host[:port]), repository, tag, plainHttp ("true"), trust (path), tpm (URI)
 * or deviceCertificate (path), floorFile (path, without a TPM), hook (shell command).
 * Registry credentials come from SIGIL_REGISTRY_USERNAME / SIGIL_REGISTRY_PASSWORD, never the database.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SigilError } from '../../core/errors.ts';
import { parseCertificatePem } from '../../device/certificates.ts';
import { readDeviceIdentity, verifyDeviceCertificate } from '../../device/device-identity.ts';
import { loadVendorTrust, type VendorTrust } from '../../device/trust.ts';
import { Tpm } from '../../tpm/tpm.ts';
import { fileReleaseFloor, initFileReleaseFloor, tpmReleaseFloor, type ReleaseFloor } from '../manifest/floor.ts';
import { checkRepository, checkTag } from '../oci/reference.ts';
import { RegistryClient } from '../oci/registry.ts';
import { UpdateDatabase } from './database.ts';
import { UpdateEngine } from './engine.ts';
import type { Progress, UpdateSource } from './staging.ts';
import { StateDir } from './state-dir.ts';

export interface UpdateSettings {
  registry?: string;
  repository?: string;
  tag?: string;
  plainHttp?: boolean;
  trust?: string;
  tpm?: string;
  deviceCertificate?: string;
  floorFile?: string;
  hook?: string;
}

const KEYS = ['registry', 'repository', 'tag', 'plainHttp', 'trust', 'tpm', 'deviceCertificate', 'floorFile', 'hook'] as const;

export function readSettings(db: UpdateDatabase): UpdateSettings {
  const raw = db.settings();
  const out: UpdateSettings = {};
  for (const key of KEYS) {
    const value = raw[key];
    if (value === undefined) continue;
    if (key === 'plainHttp') out.plainHttp = value === 'true';
    else out[key] = value;
  }
  return out;
}

function readFile(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    throw new SigilError('update.config_invalid', `cannot read the ${what} ${path}`, { path }, { cause: error });
  }
}

export interface DeviceContext {
  trust: VendorTrust;
  productId: string;
  serial: string;
  floor: ReleaseFloor;
  close(): Promise<void>;
}

/** Open trust, identity and floor as the settings say; the caller closes (the TPM connection). */
export async function openDevice(settings: UpdateSettings, stateDir: string): Promise<DeviceContext> {
  if (!settings.trust) throw new SigilError('update.not_configured', 'no vendor trust bundle is configured (sigil update init --trust FILE)');
  const trust = await loadVendorTrust(readFile(settings.trust, 'vendor trust bundle'));
  if (settings.tpm !== undefined) {
    const tpm = Tpm.open(settings.tpm);
    try {
      const identity = await readDeviceIdentity(tpm, trust);
      return { trust, productId: identity.productId, serial: identity.serial, floor: tpmReleaseFloor(tpm), close: () => tpm.close() };
    } catch (error) {
      await tpm.close();
      throw error;
    }
  }
  if (!settings.deviceCertificate) throw new SigilError('update.not_configured', 'neither a TPM nor a device certificate is configured (sigil update init --tpm URI | --device-certificate FILE)');
  const certificate = parseCertificatePem(new TextDecoder().decode(readFile(settings.deviceCertificate, 'device certificate')), 'device certificate', 'update.config_invalid');
  const claims = await verifyDeviceCertificate(certificate, trust);
  const floor = fileReleaseFloor(settings.floorFile ?? new StateDir(stateDir).defaultFloorFile);
  return { trust, productId: claims.productId, serial: claims.serial, floor, close: async () => undefined };
}

export function sourceFromSettings(settings: UpdateSettings, reference?: string): UpdateSource | undefined {
  if (!settings.registry || !settings.repository) return undefined;
  const { registry, repository, plainHttp } = settings;
  const client = (repo?: string) =>
    new RegistryClient({ registry, repository: repo ?? repository, plainHttp, username: process.env.SIGIL_REGISTRY_USERNAME, password: process.env.SIGIL_REGISTRY_PASSWORD });
  return { client, reference: reference ?? settings.tag ?? 'stable', location: `${registry}/${repository}` };
}

export interface InitOptions extends UpdateSettings {
  stateDir: string;
  /** Without a TPM: the floor file's first value when it does not exist yet (default 1). */
  initialRelease?: number;
}

/**
 * Store the configuration (paths made absolute) after checking it works: the trust bundle loads,
 * the device identity verifies, the floor is readable (the floor file is created when missing).
 */
export async function initUpdate(options: InitOptions): Promise<{ settings: UpdateSettings; productId: string; serial: string; floor: number }> {
  const state = new StateDir(resolve(options.stateDir));
  state.ensure();
  state.lock();
  let db: UpdateDatabase;
  try {
    db = UpdateDatabase.open(state.databasePath);
  } catch (error) {
    state.unlock();
    throw error;
  }
  try {
    const settings: UpdateSettings = { ...readSettings(db) };
    for (const key of KEYS) {
      const value = options[key];
      if (value !== undefined) (settings as Record<string, unknown>)[key] = value;
    }
    if (options.tpm !== undefined) delete settings.deviceCertificate;
    if (options.deviceCertificate !== undefined) delete settings.tpm;
    for (const key of ['trust', 'deviceCertificate', 'floorFile'] as const) if (settings[key]) settings[key] = resolve(settings[key]);
    if (settings.repository) checkRepository(settings.repository);
    if (settings.tag) checkTag(settings.tag);
    if (settings.tpm === undefined) {
      settings.floorFile ??= state.defaultFloorFile;
      if (!existsSync(settings.floorFile)) initFileReleaseFloor(settings.floorFile, options.initialRelease ?? 1);
    }
    const device = await openDevice(settings, state.root);
    let floor: number;
    try {
      floor = await device.floor.read();
    } finally {
      await device.close();
    }
    const stored: Record<string, string | undefined> = {};
    for (const key of KEYS) stored[key] = settings[key] === undefined ? undefined : String(settings[key]);
    db.setSettings(stored);
    return { settings, productId: device.productId, serial: device.serial, floor };
  } finally {
    db.close();
    state.unlock();
  }
}

export interface ConfiguredEngine {
  engine: UpdateEngine;
  device: DeviceContext;
  settings: UpdateSettings;
  close(): Promise<void>;
}

/** Open the engine the way `sigil update` does: settings from the database, device from them. */
export async function openConfiguredEngine(stateDir: string, overrides: { reference?: string; hook?: string; threads?: number; onProgress?: Progress } = {}): Promise<ConfiguredEngine> {
  const root = resolve(stateDir);
  if (!existsSync(new StateDir(root).databasePath)) throw new SigilError('update.not_configured', `${root} holds no update configuration (run sigil update init)`, { stateDir: root });
  const db = UpdateDatabase.open(new StateDir(root).databasePath);
  let settings: UpdateSettings;
  try {
    settings = readSettings(db);
  } finally {
    db.close();
  }
  const device = await openDevice(settings, root);
  let engine: UpdateEngine;
  try {
    engine = await UpdateEngine.open({
      stateDir: root,
      trust: device.trust,
      productId: device.productId,
      floor: device.floor,
      source: sourceFromSettings(settings, overrides.reference),
      hook: overrides.hook ?? settings.hook,
      threads: overrides.threads,
      onProgress: overrides.onProgress,
    });
  } catch (error) {
    await device.close();
    throw error;
  }
  return {
    engine,
    device,
    settings,
    close: async () => {
      engine.close();
      await device.close();
    },
  };
}
