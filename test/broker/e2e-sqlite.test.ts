import { brokerSuite } from './support/suite.ts';

// The acceptance suite on the embedded default: SQLite (node:sqlite) in the data directory.
brokerSuite('SQLite', async () => ({}));
