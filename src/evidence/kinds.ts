import { evidenceKinds, registerEvidenceKind } from './registry.ts';
import { tpmEvidenceKind } from './tpm/kind.ts';

/**
 * The evidence kinds the broker supports out of the box. Register further kinds (snp, tdx, azure)
 * here with one line each; the protocol and the store need no change.
 */
export function registerDefaultEvidenceKinds(): void {
  if (!evidenceKinds.has('tpm')) registerEvidenceKind('tpm', tpmEvidenceKind);
}
