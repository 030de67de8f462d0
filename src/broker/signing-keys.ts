import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { JWK } from 'jose';
import { SigilError } from '../core/errors.ts';
import type { EarAlgorithm } from '../policy/ear.ts';
import { decryptEnvelope, encryptEnvelope, type MasterKey } from './master-key.ts';
import type { Database } from './store/schema.ts';

/**
 * The broker's EAR signing keys, shared by all replicas through the database, the private half
 * envelope-encrypted under the master key. Every replica signs with the newest active key of the
 * configured algorithm and verifies with any key it knows (looked up again when an unknown kid
 * arrives, so a key another replica just made is found).
 */
interface LoadedKey {
  kid: string;
  alg: EarAlgorithm;
  publicKey: KeyObject;
  publicJwk: JWK;
  privateKey?: KeyObject;
  createdAt: number;
}

const CURVE: Record<EarAlgorithm, string> = { ES256: 'P-256', ES384: 'P-384' };

export class SigningKeys {
  readonly #db: Kysely<Database>;
  readonly #master: MasterKey;
  readonly #alg: EarAlgorithm;
  readonly #now: () => number;
  readonly #keys = new Map<string, LoadedKey>();
  #current?: LoadedKey;
  #lastReload = 0;

  constructor(db: Kysely<Database>, master: MasterKey, alg: EarAlgorithm, now: () => number) {
    this.#db = db;
    this.#master = master;
    this.#alg = alg;
    this.#now = now;
  }

  async init(): Promise<void> {
    await this.#reload();
    if (!this.#current) {
      await this.#create();
      await this.#reload();
    }
    if (!this.#current) throw new SigilError('broker.signing_key_missing', 'no EAR signing key could be created');
  }

  current(): { kid: string; alg: EarAlgorithm; key: KeyObject } {
    const key = this.#current!;
    return { kid: key.kid, alg: key.alg, key: key.privateKey! };
  }

  async resolve(kid: string): Promise<KeyObject | undefined> {
    let key = this.#keys.get(kid);
    // Reload at most once a second: a random kid must not make every request hit the database.
    if (!key && this.#now() - this.#lastReload > 1000) {
      await this.#reload();
      key = this.#keys.get(kid);
    }
    return key?.publicKey;
  }

  jwks(): { keys: JWK[] } {
    return { keys: [...this.#keys.values()].map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: 'sig' })) };
  }

  async #create(): Promise<void> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: CURVE[this.#alg] });
    const kid = randomUUID();
    const privateJwk = JSON.stringify(privateKey.export({ format: 'jwk' }));
    await this.#db
      .insertInto('signing_keys')
      .values({
        kid,
        alg: this.#alg,
        public_jwk: JSON.stringify(publicKey.export({ format: 'jwk' })),
        private_envelope: encryptEnvelope(this.#master, new TextEncoder().encode(privateJwk), `signing-key|${kid}`),
        created_at: this.#now(),
        retired_at: null,
      })
      .execute();
  }

  async #reload(): Promise<void> {
    this.#lastReload = this.#now();
    const rows = await this.#db.selectFrom('signing_keys').selectAll().orderBy('created_at').execute();
    for (const row of rows) {
      if (this.#keys.has(row.kid)) continue;
      const publicJwk = JSON.parse(row.public_jwk) as JWK;
      const alg = row.alg as EarAlgorithm;
      const loaded: LoadedKey = { kid: row.kid, alg, publicJwk, publicKey: createPublicKey({ key: publicJwk as never, format: 'jwk' }), createdAt: Number(row.created_at) };
      if (row.retired_at === null && row.alg === this.#alg) {
        const jwk = JSON.parse(new TextDecoder().decode(decryptEnvelope(this.#master, row.private_envelope, `signing-key|${row.kid}`)));
        loaded.privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
      }
      this.#keys.set(row.kid, loaded);
    }
    for (const key of this.#keys.values()) {
      if (key.privateKey && (!this.#current || key.createdAt > this.#current.createdAt)) this.#current = key;
    }
  }
}
