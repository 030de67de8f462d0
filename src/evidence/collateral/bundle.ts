import { utf8 } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/hex.ts';
import { checkPemChain, crlNextUpdate, signedJsonNextUpdate, toDer, type SignedJsonMember } from './formats.ts';
import { checkCa, checkFmspc, checkProduct, checkTcb, hwIdHex, notFound, type Collateral, type CollateralProvider, type IntelPckCa, type SnpProduct, type SnpSigningKey, type SnpTcbParts } from './provider.ts';

/**
 * An offline collateral bundle: files under fixed, documented names (README.md in this folder),
 * in a directory (node-files.ts `directorySource`) or in one JSON file (`jsonBundleSource`).
 *
 *   snp/<Product>/cert_chain.pem                 ASK then ARK        (KDS vcek/v1/<Product>/cert_chain)
 *   snp/<Product>/crl.der                        ARK CRL for VCEKs   (KDS vcek/v1/<Product>/crl)
 *   snp/<Product>/vlek_cert_chain.pem            ASVK then ARK       (KDS vlek/v1/<Product>/cert_chain)
 *   snp/<Product>/vlek_crl.der                   ARK CRL for VLEKs   (KDS vlek/v1/<Product>/crl)
 *   snp/<Product>/vcek/<hwid>-<tcb>.der          a VCEK: <hwid> = CHIP_ID as lowercase hex (Turin:
 *                                                its first 8 bytes), <tcb> = REPORTED_TCB as 16
 *                                                lowercase hex digits, most significant first
 *   tdx/tcbinfo/<fmspc>.json                     PCS tdx/certification/v4/tcb body, <fmspc> lowercase
 *   tdx/tcbinfo/<fmspc>.issuer_chain.pem         its TCB-Info-Issuer-Chain (optional, see below)
 *   tdx/qe_identity.json                         PCS tdx/certification/v4/qe/identity body
 *   tdx/qe_identity.issuer_chain.pem             its issuer chain (optional, see below)
 *   tdx/tcb_signing_chain.pem                    TCB signing certificate + root: the issuer chain
 *                                                for TCB info and QE identity when no own one is given
 *   tdx/pck_crl_<processor|platform>.der         PCS sgx/certification/v4/pckcrl?ca=…&encoding=der
 *   tdx/pck_crl_<processor|platform>.issuer_chain.pem   its SGX-PCK-CRL-Issuer-Chain (optional)
 *   tdx/root_ca_crl.der                          the Intel SGX Root CA CRL
 *
 * <Product> is Milan, Genoa or Turin as AMD spells them. ".der" files may also hold PEM or hex
 * text. A missing file is `collateral.not_found`; a damaged one `collateral.bundle_malformed`.
 */
export interface BundleSource {
  /** The file's bytes, or undefined when the bundle has no such file. */
  read(name: string): Promise<Uint8Array | undefined>;
  /** Where the bundle lives, for messages ("dir /etc/sigil/collateral"). */
  readonly description: string;
}

const CODE = 'collateral.bundle_malformed';
const BUNDLE_FORMAT = 'sigil-collateral-bundle';
const NAME = /^(snp|tdx)\/[A-Za-z0-9_./-]{1,200}$/;
const MAX_FILES = 10_000;

/** A safe relative name: no absolute paths, no "..", no empty segments. */
export function checkBundleName(name: string): string {
  if (!NAME.test(name) || name.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw new SigilError(CODE, `"${name}" is not a bundle file name`, { name });
  }
  return name;
}

/** Files kept in memory, by bundle name. */
export function memorySource(files: Record<string, Uint8Array | string>, description = 'in-memory bundle'): BundleSource {
  const map = new Map<string, Uint8Array>();
  for (const [name, content] of Object.entries(files)) map.set(checkBundleName(name), typeof content === 'string' ? utf8.encode(content) : content);
  return { description, read: async (name) => map.get(name) };
}

/**
 * A single-file bundle: {"format": "sigil-collateral-bundle", "version": 1, "files": {name: content}}
 * where content is base64 for names ending ".der" and the file's text otherwise.
 */
export function jsonBundleSource(text: string, description = 'JSON bundle'): BundleSource {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SigilError(CODE, `${description} is not JSON`, {}, { cause: error });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new SigilError(CODE, `${description} is not a JSON object`);
  const bundle = json as Record<string, unknown>;
  if (bundle.format !== BUNDLE_FORMAT || bundle.version !== 1) throw new SigilError(CODE, `${description} is not a "${BUNDLE_FORMAT}" version 1`);
  const files = bundle.files;
  if (typeof files !== 'object' || files === null || Array.isArray(files)) throw new SigilError(CODE, `${description} has no "files" object`);
  const entries = Object.entries(files as Record<string, unknown>);
  if (entries.length > MAX_FILES) throw new SigilError(CODE, `${description} has more than ${MAX_FILES} files`);
  const decoded: Record<string, Uint8Array | string> = {};
  for (const [name, content] of entries) {
    checkBundleName(name);
    if (typeof content !== 'string') throw new SigilError(CODE, `${description}: "${name}" is not a string`, { name });
    if (name.endsWith('.der')) {
      if (!/^[A-Za-z0-9+/=\s]*$/.test(content)) throw new SigilError(CODE, `${description}: "${name}" is not base64`, { name });
      try {
        decoded[name] = fromBase64(content);
      } catch (error) {
        throw new SigilError(CODE, `${description}: "${name}" is not base64`, { name }, { cause: error });
      }
    } else decoded[name] = content;
  }
  return memorySource(decoded, description);
}

export class OfflineBundle implements CollateralProvider {
  readonly source: BundleSource;

  constructor(source: BundleSource) {
    this.source = source;
  }

  private async file(name: string, what: string): Promise<Uint8Array> {
    const bytes = await this.source.read(checkBundleName(name));
    if (!bytes) throw notFound(what, `${this.source.description}: ${name}`);
    return bytes;
  }

  private async optional(name: string): Promise<Uint8Array | undefined> {
    return this.source.read(checkBundleName(name));
  }

  private result<T>(value: T, name: string, extra: Partial<Collateral<T>> = {}): Collateral<T> {
    return { value, source: 'bundle', stale: false, location: `${this.source.description}: ${name}`, ...extra };
  }

  private async text(name: string, what: string): Promise<string> {
    const bytes = await this.file(name, what);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (error) {
      throw new SigilError(CODE, `${name} is not UTF-8 text`, { name }, { cause: error });
    }
  }

  private async crl(name: string, what: string): Promise<Collateral<Uint8Array>> {
    const der = toDer(await this.file(name, what), name, CODE);
    const next = crlNextUpdate(der, name, CODE);
    return this.result(der, name, next ? { freshUntil: next } : {});
  }

  private async chain(name: string): Promise<string | undefined> {
    const bytes = await this.optional(name);
    if (!bytes) return undefined;
    return checkPemChain(utf8.decode(bytes), name, CODE);
  }

  private async signedJson(name: string, member: SignedJsonMember, ownChain: string, what: string): Promise<Collateral<string>> {
    const text = await this.text(name, what);
    const next = signedJsonNextUpdate(text, member, name, CODE);
    const issuerChain = (await this.chain(ownChain)) ?? (await this.chain('tdx/tcb_signing_chain.pem'));
    return this.result(text, name, { freshUntil: next, ...(issuerChain ? { issuerChain } : {}) });
  }

  async getSnpVcek(product: SnpProduct, chipId: Uint8Array, tcb: SnpTcbParts): Promise<Collateral<Uint8Array>> {
    checkProduct(product);
    const name = `snp/${product}/vcek/${hwIdHex(product, chipId)}-${checkTcb(tcb, product).hex}.der`;
    return this.result(toDer(await this.file(name, `the ${product} VCEK`), name, CODE), name);
  }

  async getSnpChain(product: SnpProduct, signingKey: SnpSigningKey = 'vcek'): Promise<Collateral<string>> {
    const name = `snp/${checkProduct(product)}/${signingKey === 'vlek' ? 'vlek_' : ''}cert_chain.pem`;
    return this.result(checkPemChain(await this.text(name, `the ${product} ${signingKey.toUpperCase()} chain`), name, CODE), name);
  }

  getSnpCrl(product: SnpProduct, signingKey: SnpSigningKey = 'vcek'): Promise<Collateral<Uint8Array>> {
    return this.crl(`snp/${checkProduct(product)}/${signingKey === 'vlek' ? 'vlek_' : ''}crl.der`, `the ${product} ARK CRL`);
  }

  async getTdxPckCrl(ca: IntelPckCa): Promise<Collateral<Uint8Array>> {
    const name = `tdx/pck_crl_${checkCa(ca)}.der`;
    const crl = await this.crl(name, `the PCK ${ca} CA CRL`);
    const issuerChain = await this.chain(`tdx/pck_crl_${ca}.issuer_chain.pem`);
    return issuerChain ? { ...crl, issuerChain } : crl;
  }

  getTdxTcbInfo(fmspc: string): Promise<Collateral<string>> {
    const id = checkFmspc(fmspc);
    return this.signedJson(`tdx/tcbinfo/${id}.json`, 'tcbInfo', `tdx/tcbinfo/${id}.issuer_chain.pem`, `TCB info for FMSPC ${id}`);
  }

  getTdxQeIdentity(): Promise<Collateral<string>> {
    return this.signedJson('tdx/qe_identity.json', 'enclaveIdentity', 'tdx/qe_identity.issuer_chain.pem', 'the TDX QE identity');
  }

  getIntelRootCrl(): Promise<Collateral<Uint8Array>> {
    return this.crl('tdx/root_ca_crl.der', 'the Intel SGX Root CA CRL');
  }
}
