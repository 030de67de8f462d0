/**
 * node:crypto and node:buffer when this code runs on Node, else undefined. Found at run time through
 * process.getBuiltinModule, so no file of the isomorphic core imports a node: module and the same
 * code runs unchanged in browsers (where callers fall back to WebCrypto and plain JavaScript).
 * Node's WebCrypto runs every call on a thread pool: a hop of tens of µs that dominates small
 * hashes and single signature checks, which node:crypto does synchronously on the calling
 * thread; and node's native base64 is ten times faster than any JavaScript loop.
 *
 * Only the few members Sigil uses are typed here, as structural interfaces (no Node types).
 */
export interface NodePublicKey {
  readonly type: string;
  readonly asymmetricKeyType?: string;
  readonly asymmetricKeyDetails?: { namedCurve?: string };
}

export interface NodeCrypto {
  createHash(name: string): { update(data: Uint8Array): unknown; digest(encoding: 'latin1'): string };
  createHmac(name: string, key: Uint8Array): { update(data: Uint8Array): unknown; digest(encoding: 'latin1'): string };
  /** One-shot hash (Node 20.12+); absent on older runtimes. */
  hash?(name: string, data: Uint8Array, outputEncoding: 'latin1' | 'base64'): string;
  createPublicKey(input: { key: Uint8Array | JsonWebKey; format: 'der' | 'jwk'; type?: 'spki' }): NodePublicKey;
  verify(
    hash: string,
    data: Uint8Array,
    key: NodePublicKey | { key: NodePublicKey; dsaEncoding?: 'ieee-p1363' | 'der'; padding?: number; saltLength?: number },
    signature: Uint8Array,
  ): boolean;
  constants: { RSA_PKCS1_PADDING: number; RSA_PKCS1_PSS_PADDING: number };
}

export interface NodeBufferClass {
  from(text: string, encoding: 'base64'): Uint8Array;
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): Uint8Array & { toString(encoding: 'base64' | 'hex'): string; equals(other: Uint8Array): boolean };
}

const host = globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } };

export const nodeCrypto = host.process?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;

export const nodeBuffer = (host.process?.getBuiltinModule?.('node:buffer') as { Buffer: NodeBufferClass } | undefined)?.Buffer;
