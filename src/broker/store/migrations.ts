import type { Kysely, Migration } from 'kysely';

/**
 * Schema migrations, applied in name order by kysely's Migrator (which takes a lock, so replicas
 * starting together on one PostgreSQL migrate once). Append new migrations; never edit old ones.
 */
export function migrations(dialect: 'sqlite' | 'postgres'): Record<string, Migration> {
  const serial = dialect === 'postgres' ? 'bigserial' : 'integer';
  return {
    '0001_initial': {
      async up(db: Kysely<any>) {
        await db.schema.createTable('meta').addColumn('key', 'text', (c) => c.primaryKey()).addColumn('value', 'text', (c) => c.notNull()).execute();
        await db.schema
          .createTable('tenants')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('settings', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('admin_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('tenant', 'text')
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('revoked_at', 'bigint')
          .execute();
        await db.schema
          .createTable('devices')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('material', 'text', (c) => c.notNull())
          .addColumn('identity', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('devices_pk', ['tenant', 'id'])
          .execute();
        await db.schema
          .createTable('enrolments')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('device_id', 'text', (c) => c.notNull())
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('material', 'text', (c) => c.notNull())
          .addColumn('identity', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('ca_bundles')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('purpose', 'text', (c) => c.notNull())
          .addColumn('pem', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('ca_bundles_pk', ['tenant', 'name'])
          .execute();
        await db.schema
          .createTable('policies')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('document', 'text', (c) => c.notNull())
          .addColumn('is_default', 'integer', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('policies_pk', ['tenant', 'id'])
          .execute();
        await db.schema
          .createTable('reference_values')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('document', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('reference_values_pk', ['tenant', 'name'])
          .execute();
        await db.schema
          .createTable('resources')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('path', 'text', (c) => c.notNull())
          .addColumn('envelope', 'text', (c) => c.notNull())
          .addColumn('release_policy', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('resources_pk', ['tenant', 'path'])
          .execute();
        await db.schema
          .createTable('nonces')
          .addColumn('nonce', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('device_id', 'text')
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('nonces_expiry').on('nonces').column('expires_at').execute();
        await db.schema
          .createTable('attestations')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('device_id', 'text')
          .addColumn('policy_id', 'text')
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('evidence', 'text', (c) => c.notNull())
          .addColumn('nonce', 'text')
          .addColumn('runtime_jkt', 'text')
          .addColumn('trace', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('attestations_tenant_at').on('attestations').columns(['tenant', 'at']).execute();
        await db.schema
          .createTable('revocations')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('subject_type', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('revocations_subject').on('revocations').columns(['tenant', 'subject_type', 'subject']).execute();
        await db.schema
          .createTable('events')
          .addColumn('id', serial, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('events_created').on('events').column('created_at').execute();
        await db.schema
          .createTable('webhooks')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('secret_envelope', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('webhooks_pk', ['tenant', 'id'])
          .execute();
        await db.schema
          .createTable('audit_log')
          .addColumn('seq', 'bigint', (c) => c.primaryKey())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('tenant', 'text')
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('prev_hash', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('mac', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('audit_head')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('seq', 'bigint', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('mac', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('signing_keys')
          .addColumn('kid', 'text', (c) => c.primaryKey())
          .addColumn('alg', 'text', (c) => c.notNull())
          .addColumn('public_jwk', 'text', (c) => c.notNull())
          .addColumn('private_envelope', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('retired_at', 'bigint')
          .execute();
        // The chain's genesis: entry 1 links to 64 zeros. Its MAC is empty (no secret went into it).
        await db.insertInto('audit_head').values({ id: 1, seq: 0, hash: '0'.repeat(64), mac: '' }).execute();
      },
    },
    // Every release asks for revocations of its tenant made since the token was issued: a range
    // scan on this index instead of a scan of the tenant's revocations plus a sort.
    '0002_revocations_by_time': {
      async up(db: Kysely<any>) {
        await db.schema.createIndex('revocations_time').on('revocations').columns(['tenant', 'revoked_at']).execute();
      },
    },
  };
}
