import { isSigilError } from '../core/errors.ts';
import { digest } from '../core/hash.ts';
import { toHex } from '../core/hex.ts';
import { certificateAndSha256 } from '../core/x509-cache.ts';
import { EV } from './event-types.ts';
import { dataMismatch, digestHex, digestMatches, requireBound } from './event-data.ts';
import { parseImageLoadEvent } from './efi-image.ts';
import { parseFirmwareBlob, parseGptEvent, type GptData } from './efi-tables.ts';
import {
  EFI_GLOBAL_VARIABLE,
  EFI_IMAGE_SECURITY_DATABASE,
  parseBootOrder,
  parseLoadOption,
  parseSignatureLists,
  parseUefiVariableData,
  type UefiVariableData,
} from './efi-variable.ts';
import { asciiz, utf16le } from './le.ts';
import { applyQuirk, quirkRequired, type AppliedQuirk, type QuirkOptions } from './quirks.ts';
import type { TcgEvent } from './tcg-log.ts';

/**
 * The firmware part of the boot state (PCRs 0-7, TCG PC Client PFP 1.06 section 3.3.4): Secure
 * Boot configuration, authorities, EFI images, boot variables, actions, separators, the GPT.
 */
export interface SignatureDatabase {
  /** False when the variable was measured with no data (PFP: an absent variable). */
  present: boolean;
  certificates: { owner: string; sha256: string; subject?: string }[];
  hashes: { owner: string; type: string; value: string }[];
}

export interface Authority {
  variable: string;
  guid: string;
  /** SHA-256 of the authority data (certificate DER, or the raw variable contents). */
  sha256: string;
  subject?: string;
  text?: string;
}

export interface FirmwareState {
  /** undefined when PCR 7 carries no SecureBoot measurement. */
  secureBoot?: boolean;
  secureBootVariables: { PK?: SignatureDatabase; KEK?: SignatureDatabase; db?: SignatureDatabase; dbx?: SignatureDatabase };
  otherConfigVariables: { name: string; guid: string; size: number }[];
  authorities: Authority[];
  efiApplications: { digest: string; pathHint?: string; sequence: number }[];
  efiDrivers: { digest: string; pcr: number; pathHint?: string }[];
  bootOrder?: number[];
  bootOptions: { name: string; description?: string }[];
  /** PCR → "normal" (0x00000000), "error" (0x00000001 / 0xffffffff) or "unexpected". */
  separators: Record<number, 'normal' | 'error' | 'unexpected'>;
  missingSeparators: number[];
  actions: { pcr: number; text: string }[];
  exitBootServices: 'success' | 'failure' | 'invoked' | 'not-measured';
  crtmVersion?: string;
  firmwareBlobs: { pcr: number; description?: string; base: string; length: string; digest: string }[];
  nonHostInfo: string[];
  gpt?: GptData;
}

type Ctx = { alg: number; options: QuirkOptions; quirks: AppliedQuirk[] };

export async function extractFirmware(events: TcgEvent[], pcrs: Set<number>, ctx: Ctx): Promise<FirmwareState> {
  const state: FirmwareState = {
    secureBootVariables: {},
    otherConfigVariables: [],
    authorities: [],
    efiApplications: [],
    efiDrivers: [],
    bootOptions: [],
    separators: {},
    missingSeparators: [],
    actions: [],
    exitBootServices: 'not-measured',
    firmwareBlobs: [],
    nonHostInfo: [],
  };
  for (const event of events) await apply(state, event, ctx);
  state.missingSeparators = [0, 1, 2, 3, 4, 5, 6, 7].filter((pcr) => pcrs.has(pcr) && !(pcr in state.separators));
  const ebs = state.actions.filter((a) => a.pcr === 5).map((a) => a.text);
  if (ebs.includes('Exit Boot Services Returned with Success')) state.exitBootServices = 'success';
  else if (ebs.includes('Exit Boot Services Returned with Failure')) state.exitBootServices = 'failure';
  else if (ebs.includes('Exit Boot Services Invocation')) state.exitBootServices = 'invoked';
  return state;
}

async function apply(state: FirmwareState, event: TcgEvent, ctx: Ctx): Promise<void> {
  const { alg } = ctx;
  switch (event.type) {
    case EV.SEPARATOR: {
      await requireBound(event, alg, event.data, 'separator value');
      const value = event.data.length === 4 ? (event.data[0] | (event.data[1] << 8) | (event.data[2] << 16) | (event.data[3] << 24)) >>> 0 : -1;
      state.separators[event.pcr] = value === 0 ? 'normal' : value === 1 || value === 0xffffffff ? 'error' : 'unexpected';
      return;
    }
    case EV.EFI_ACTION:
    case EV.ACTION:
      await requireBound(event, alg, event.data, 'action string');
      state.actions.push({ pcr: event.pcr, text: asciiz(event.data) });
      return;
    case EV.S_CRTM_VERSION:
      await requireBound(event, alg, event.data, 'S-CRTM version');
      state.crtmVersion = event.data.length % 2 === 0 && event.data[1] === 0 ? utf16le(event.data) : toHex(event.data);
      return;
    case EV.NONHOST_INFO:
      await requireBound(event, alg, event.data, 'non-host info');
      state.nonHostInfo.push(toHex(event.data));
      return;
    case EV.POST_CODE:
    case EV.EFI_PLATFORM_FIRMWARE_BLOB:
    case EV.EFI_PLATFORM_FIRMWARE_BLOB2: {
      if (event.data.length !== 16 && event.type !== EV.EFI_PLATFORM_FIRMWARE_BLOB2) return; // a POST code string, not a blob
      const blob = parseFirmwareBlob(event.data, event.type === EV.EFI_PLATFORM_FIRMWARE_BLOB2 ? 2 : 1);
      state.firmwareBlobs.push({ pcr: event.pcr, description: blob.description, base: `0x${blob.base.toString(16)}`, length: `0x${blob.length.toString(16)}`, digest: digestHex(event, alg) });
      return;
    }
    case EV.EFI_BOOT_SERVICES_APPLICATION:
      state.efiApplications.push({ digest: digestHex(event, alg), pathHint: imagePath(event), sequence: event.sequence });
      return;
    case EV.EFI_BOOT_SERVICES_DRIVER:
    case EV.EFI_RUNTIME_SERVICES_DRIVER:
      state.efiDrivers.push({ digest: digestHex(event, alg), pcr: event.pcr, pathHint: imagePath(event) });
      return;
    case EV.EFI_GPT_EVENT:
      await requireBound(event, alg, event.data, 'GPT');
      state.gpt = parseGptEvent(event.data);
      return;
    case EV.EFI_VARIABLE_DRIVER_CONFIG: {
      await requireBound(event, alg, event.data, 'UEFI variable');
      await configVariable(state, parseUefiVariableData(event.data));
      return;
    }
    case EV.EFI_VARIABLE_BOOT:
    case EV.EFI_VARIABLE_BOOT2:
      bootVariable(state, await boundBootVariable(event, ctx));
      return;
    case EV.EFI_VARIABLE_AUTHORITY:
      state.authorities.push(await authority(await boundAuthority(event, ctx)));
      return;
  }
}

function imagePath(event: TcgEvent): string | undefined {
  try {
    return parseImageLoadEvent(event.data).filePath;
  } catch (error) {
    if (isSigilError(error)) return undefined; // the image event data is an unbound hint anyway
    throw error;
  }
}

async function configVariable(state: FirmwareState, variable: UefiVariableData): Promise<void> {
  const { guid, name, data } = variable;
  if (guid === EFI_GLOBAL_VARIABLE && name === 'SecureBoot') {
    // PFP: an absent variable is measured with VariableDataLength 0, and means Secure Boot is off.
    state.secureBoot = data.length > 0 && data[0] === 1;
    return;
  }
  const database = (guid === EFI_GLOBAL_VARIABLE && (name === 'PK' || name === 'KEK')) || (guid === EFI_IMAGE_SECURITY_DATABASE && (name === 'db' || name === 'dbx'));
  if (database) {
    state.secureBootVariables[name as 'PK' | 'KEK' | 'db' | 'dbx'] = await signatureDatabase(data);
    return;
  }
  state.otherConfigVariables.push({ name, guid, size: data.length });
}

async function signatureDatabase(data: Uint8Array): Promise<SignatureDatabase> {
  const db: SignatureDatabase = { present: data.length > 0, certificates: [], hashes: [] };
  for (const list of parseSignatureLists(data)) {
    for (const entry of list.entries) {
      if (list.type === 'x509') {
        const { sha256, subject } = await certificateSummary(entry.data);
        db.certificates.push({ owner: entry.owner, sha256: toHex(sha256), subject });
      } else db.hashes.push({ owner: entry.owner, type: list.type, value: toHex(entry.data) });
    }
  }
  return db;
}

/**
 * SHA-256 and subject, hashing once and parsing once per distinct certificate (core/x509-cache.ts):
 * db and KEK repeat in every log of a fleet. The subject is optional display data; the SHA-256
 * identifies the certificate.
 */
async function certificateSummary(der: Uint8Array): Promise<{ sha256: Uint8Array; subject?: string }> {
  const { sha256, certificate } = await certificateAndSha256(der);
  let subject: string | undefined;
  try {
    subject = certificate?.subject;
  } catch {
    subject = undefined;
  }
  return { sha256, subject };
}

async function boundBootVariable(event: TcgEvent, ctx: Ctx): Promise<UefiVariableData> {
  const variable = parseUefiVariableData(event.data);
  if (event.type === EV.EFI_VARIABLE_BOOT2) {
    await requireBound(event, ctx.alg, event.data, 'boot variable');
    return variable;
  }
  if (await digestMatches(event, ctx.alg, variable.data)) return variable;
  if (await digestMatches(event, ctx.alg, event.data)) {
    const detail = `event ${event.sequence} (${variable.name}) hashes the whole UEFI_VARIABLE_DATA`;
    if (applyQuirk(ctx.options, ctx.quirks, 'boot-variable-whole-event-digest', detail)) return variable;
    throw quirkRequired('boot-variable-whole-event-digest', detail, { sequence: event.sequence });
  }
  throw dataMismatch(event, `boot variable ${variable.name}`);
}

function bootVariable(state: FirmwareState, variable: UefiVariableData): void {
  if (variable.name === 'BootOrder') {
    state.bootOrder = parseBootOrder(variable.data);
    return;
  }
  let description: string | undefined;
  try {
    if (/^Boot[0-9A-Fa-f]{4}$/.test(variable.name)) description = parseLoadOption(variable.data).description;
  } catch (error) {
    if (!isSigilError(error)) throw error; // a malformed load option keeps its name, loses its description
  }
  state.bootOptions.push({ name: variable.name, description });
}

async function boundAuthority(event: TcgEvent, ctx: Ctx): Promise<UefiVariableData> {
  if (await digestMatches(event, ctx.alg, event.data)) {
    const variable = parseUefiVariableData(event.data);
    if (variable.trailing !== 0) throw dataMismatch(event, 'authority (bytes after the UEFI_VARIABLE_DATA)');
    return variable;
  }
  if (event.data.length > 0 && (await digestMatches(event, ctx.alg, event.data.subarray(0, event.data.length - 1)))) {
    const detail = `event ${event.sequence} hashes all but the last byte of its data`;
    if (!applyQuirk(ctx.options, ctx.quirks, 'shim-authority-digest-short', detail)) throw quirkRequired('shim-authority-digest-short', detail, { sequence: event.sequence });
    return parseUefiVariableData(event.data);
  }
  throw dataMismatch(event, 'authority');
}

async function authority(variable: UefiVariableData): Promise<Authority> {
  const { name, guid, data } = variable;
  // Firmware logs the db entry as EFI_SIGNATURE_DATA (owner GUID + certificate), shim the bare DER.
  const der = data[0] === 0x30 ? data : data.length > 16 && data[16] === 0x30 ? data.subarray(16) : undefined;
  const summary = der ? await certificateSummary(der) : undefined;
  const subject = summary?.subject;
  const out: Authority = { variable: name, guid, sha256: toHex(subject && summary ? summary.sha256 : await digest('SHA-256', data)) };
  if (subject) out.subject = subject;
  else if (data.every((b) => b === 0x0a || (b >= 0x20 && b < 0x7f))) out.text = asciiz(data);
  return out;
}
