import { toHex } from '../../core/hex.ts';
import type { CcelEvent } from './ccel.ts';
import type { PckExtensions } from './pck-extensions.ts';
import type { QeIdentityResult } from './qe-identity.ts';
import type { TdxQuote } from './quote.ts';
import type { TcbEvaluation } from './tcb-evaluation.ts';
import { decodeTdAttributes, type TdAttributes } from './td-report.ts';

/**
 * What a verified TDX quote says, as plain JSON-ready values (hex lowercase, in the byte order
 * of the quote). Only verifyTdxQuote builds these, inside a Verified value.
 */
export interface TdxClaims {
  quoteVersion: number;
  /** "1.0" (584-byte body) or "1.5" (648-byte body with TEE_TCB_SVN2 and MRSERVICETD). */
  tdReportVersion: '1.0' | '1.5';
  header: { qeSvn: number; pceSvn: number; qeVendorId: string; userData: string };
  teeTcbSvn: string;
  teeTcbSvn2?: string;
  mrSeam: string;
  mrSignerSeam: string;
  seamAttributes: string;
  tdAttributes: string;
  tdAttributeFlags: TdAttributes;
  xfam: string;
  mrTd: string;
  mrConfigId: string;
  mrOwner: string;
  mrOwnerConfig: string;
  rtmrs: [string, string, string, string];
  reportData: string;
  mrServiceTd?: string;
  /** The quoting enclave, from its PCK-signed report. */
  qe: { mrEnclave: string; mrSigner: string; isvProdId: number; isvSvn: number; miscSelect: number; attributes: string; cpuSvn: string };
  /** The platform, from the PCK certificate. */
  pck: PckExtensions & { ca: 'platform' | 'processor'; subject: string; serialNumber: string; notAfter: string };
  /** Which CRLs were checked (each only when supplied). */
  revocation: { rootCaCrl: boolean; pckCrl: boolean };
  /** Present when TCB info was supplied and verified. */
  tcb?: TcbEvaluation;
  /** Present when a QE identity was supplied and verified. */
  qeIdentity?: QeIdentityResult;
  /** Present when a CCEL was supplied: it replayed to exactly RTMR0-3. */
  eventLog?: { events: { mrIndex: number; eventType: number; digest: string; data: string }[] };
}

export function quoteClaims(quote: TdxQuote): Omit<TdxClaims, 'pck' | 'revocation'> {
  const { header, body, qeReport } = quote;
  const claims: Omit<TdxClaims, 'pck' | 'revocation'> = {
    quoteVersion: header.version,
    tdReportVersion: quote.bodyType === 3 ? '1.5' : '1.0',
    header: { qeSvn: header.qeSvn, pceSvn: header.pceSvn, qeVendorId: toHex(header.qeVendorId), userData: toHex(header.userData) },
    teeTcbSvn: toHex(body.teeTcbSvn),
    mrSeam: toHex(body.mrSeam),
    mrSignerSeam: toHex(body.mrSignerSeam),
    seamAttributes: toHex(body.seamAttributes),
    tdAttributes: toHex(body.tdAttributes),
    tdAttributeFlags: decodeTdAttributes(body.tdAttributes),
    xfam: toHex(body.xfam),
    mrTd: toHex(body.mrTd),
    mrConfigId: toHex(body.mrConfigId),
    mrOwner: toHex(body.mrOwner),
    mrOwnerConfig: toHex(body.mrOwnerConfig),
    rtmrs: [toHex(body.rtmrs[0]), toHex(body.rtmrs[1]), toHex(body.rtmrs[2]), toHex(body.rtmrs[3])],
    reportData: toHex(body.reportData),
    qe: {
      mrEnclave: toHex(qeReport.mrEnclave),
      mrSigner: toHex(qeReport.mrSigner),
      isvProdId: qeReport.isvProdId,
      isvSvn: qeReport.isvSvn,
      miscSelect: qeReport.miscSelect,
      attributes: toHex(qeReport.attributes),
      cpuSvn: toHex(qeReport.cpuSvn),
    },
  };
  if (body.teeTcbSvn2) claims.teeTcbSvn2 = toHex(body.teeTcbSvn2);
  if (body.mrServiceTd) claims.mrServiceTd = toHex(body.mrServiceTd);
  return claims;
}

export function eventLogClaims(events: CcelEvent[]): NonNullable<TdxClaims['eventLog']> {
  return { events: events.map((e) => ({ mrIndex: e.mrIndex, eventType: e.eventType, digest: toHex(e.digest), data: toHex(e.data) })) };
}
