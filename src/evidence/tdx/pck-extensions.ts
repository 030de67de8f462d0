import 'reflect-metadata';
import type * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';

/**
 * The SGX extension of PCK certificates, OID 1.2.840.113741.1.13.1 (Intel "SGX PCK Certificate
 * and Certificate Revocation List Profile Specification", section 1.5): a SEQUENCE of
 * SEQUENCE { OID, value }:
 *
 *   .1   PPID                 OCTET STRING (16)
 *   .2   TCB                  SEQUENCE of { .2.1 … .2.16 SGX TCB component SVNs INTEGER,
 *                                           .2.17 PCESVN INTEGER, .2.18 CPUSVN OCTET STRING (16) }
 *   .3   PCE-ID               OCTET STRING (2)
 *   .4   FMSPC                OCTET STRING (6)
 *   .5   SGX type             ENUMERATED (0 standard, 1 scalable, 2 scalable with integrity)
 *   .6   platform instance ID OCTET STRING (16)   platform CA certificates only
 *   .7   configuration        SEQUENCE { .7.1 dynamic platform, .7.2 cached keys, .7.3 SMT enabled } BOOLEANs
 */
export const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';

export interface PckExtensions {
  ppid: string;
  /** The 16 SGX TCB component SVNs (.2.1 … .2.16). */
  sgxTcbComponents: number[];
  pceSvn: number;
  cpuSvn: string;
  pceId: string;
  fmspc: string;
  sgxType: number;
  platformInstanceId?: string;
  configuration?: { dynamicPlatform?: boolean; cachedKeys?: boolean; smtEnabled?: boolean };
}

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError('tdx.pck_extension_malformed', `PCK certificate SGX extension: ${message}`, details);
}

type Entries = Map<string, asn1js.AsnType>;

/** SEQUENCE of SEQUENCE { OID, value } → map from the OID's last arc to the value. */
function entries(node: asn1js.AsnType, prefix: string): Entries {
  if (!(node instanceof asn1js.Sequence)) fail(`${prefix} is not a SEQUENCE`);
  const out: Entries = new Map();
  for (const item of node.valueBlock.value) {
    if (!(item instanceof asn1js.Sequence) || item.valueBlock.value.length !== 2) fail(`an entry under ${prefix} is not SEQUENCE { OID, value }`);
    const [oid, value] = item.valueBlock.value;
    if (!(oid instanceof asn1js.ObjectIdentifier)) fail(`an entry under ${prefix} has no OID`);
    const id = oid.valueBlock.toString();
    if (!id.startsWith(`${prefix}.`)) fail(`unexpected OID ${id} under ${prefix}`);
    out.set(id.slice(prefix.length + 1), value);
  }
  return out;
}

function octets(map: Entries, key: string, size?: number): string {
  const node = map.get(key);
  if (!(node instanceof asn1js.OctetString)) fail(`.${key} is missing or not an OCTET STRING`);
  const bytes = new Uint8Array(node.valueBlock.valueHexView);
  if (size !== undefined && bytes.length !== size) fail(`.${key} is ${bytes.length} bytes, expected ${size}`);
  return toHex(bytes);
}

function integer(map: Entries, key: string, max: number): number {
  const node = map.get(key);
  if (!(node instanceof asn1js.Integer || node instanceof asn1js.Enumerated)) fail(`.${key} is missing or not an INTEGER`);
  const value = node.valueBlock.valueDec;
  if (!Number.isInteger(value) || value < 0 || value > max) fail(`.${key} = ${value} is out of range`);
  return value;
}

function boolean(map: Entries, key: string): boolean | undefined {
  const node = map.get(key);
  if (node === undefined) return undefined;
  if (!(node instanceof asn1js.Boolean)) fail(`.${key} is not a BOOLEAN`);
  return node.valueBlock.value;
}

const parsed = new WeakMap<x509.X509Certificate, PckExtensions>();

/** A copy for the caller (claims carry it): strings and numbers, one array, one flat object. */
function copy(extensions: PckExtensions): PckExtensions {
  const out: PckExtensions = { ...extensions, sgxTcbComponents: [...extensions.sgxTcbComponents] };
  if (extensions.configuration) out.configuration = { ...extensions.configuration };
  return out;
}

export function parsePckExtensions(cert: x509.X509Certificate): PckExtensions {
  const cached = parsed.get(cert);
  if (cached) return copy(cached);
  let result: PckExtensions;
  try {
    result = parse(cert);
  } catch (error) {
    throw asSigilError(error, 'tdx.pck_extension_malformed', 'the PCK certificate SGX extension could not be decoded');
  }
  parsed.set(cert, result);
  return copy(result);
}

function parse(cert: x509.X509Certificate): PckExtensions {
  const extension = cert.getExtension(SGX_EXTENSION_OID);
  if (!extension) fail('the certificate has no SGX extension');
  return parseSgxExtension(new Uint8Array(extension.value));
}

/** The extension's value (the DER inside extnValue). */
export function parseSgxExtension(value: Uint8Array): PckExtensions {
  try {
    return decode(value);
  } catch (error) {
    throw asSigilError(error, 'tdx.pck_extension_malformed', 'the PCK certificate SGX extension could not be decoded');
  }
}

function decode(value: Uint8Array): PckExtensions {
  const der = asn1js.fromBER(value as Uint8Array<ArrayBuffer>);
  if (der.offset === -1) fail('the extension is not valid DER');
  const top = entries(der.result, SGX_EXTENSION_OID);
  const tcbNode = top.get('2');
  if (!tcbNode) fail('.2 (TCB) is missing');
  const tcb = entries(tcbNode, `${SGX_EXTENSION_OID}.2`);
  const sgxTcbComponents: number[] = [];
  for (let i = 1; i <= 16; i++) sgxTcbComponents.push(integer(tcb, String(i), 255));
  const result: PckExtensions = {
    ppid: octets(top, '1', 16),
    sgxTcbComponents,
    pceSvn: integer(tcb, '17', 0xffff),
    cpuSvn: octets(tcb, '18', 16),
    pceId: octets(top, '3', 2),
    fmspc: octets(top, '4', 6),
    sgxType: integer(top, '5', 255),
  };
  if (top.has('6')) result.platformInstanceId = octets(top, '6');
  const configuration = top.get('7');
  if (configuration) {
    const config = entries(configuration, `${SGX_EXTENSION_OID}.7`);
    result.configuration = { dynamicPlatform: boolean(config, '1'), cachedKeys: boolean(config, '2'), smtEnabled: boolean(config, '3') };
  }
  return result;
}
