import { after } from 'node:test';
import { postgresBinDir, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { brokerSuite } from './support/suite.ts';

// The same acceptance suite on a real PostgreSQL (a private cluster started for this file).
let cluster: PostgresCluster | undefined;
after(async () => cluster?.stop());

if (!postgresBinDir()) {
  const { test } = await import('node:test');
  test('broker acceptance (PostgreSQL)', { skip: 'PostgreSQL binaries are not installed (apt-get install postgresql, or npm run setup)' }, () => {});
} else {
  brokerSuite('PostgreSQL', async () => {
    cluster = await startPostgres();
    return { url: await cluster.createDatabase('acceptance') };
  });
}
