import { SigilError } from '../../core/errors.ts';

/**
 * The EPYC generations Sigil verifies. Each has its own ARK/ASK/ASVK and, from Turin on, its own
 * TCB_VERSION layout (SEV-SNP Firmware ABI 1.58, tables 3 and 4).
 */
export type SnpProduct = 'Milan' | 'Genoa' | 'Turin';

export const SNP_PRODUCTS: readonly SnpProduct[] = ['Milan', 'Genoa', 'Turin'];

export interface SnpCpuid {
  /** Combined family (extended family + base family), e.g. 0x19. */
  family: number;
  /** Combined model (extended model << 4 | base model), e.g. 0x01 (Milan), 0x11 (Genoa). */
  model: number;
  stepping: number;
}

/**
 * The product for a report's CPUID_FAM_ID/CPUID_MOD_ID (report v3+). Family 19h models 00-0Fh
 * are Milan; 10-1Fh and A0-AFh (Genoa, Bergamo, Siena) use the Genoa keys; family 1Ah models
 * 00-11h are Turin (the same ranges virtee/sev's `Generation::identify_cpu` uses). Anything
 * else is unknown rather than guessed.
 */
export function productFromCpuid(cpuid: SnpCpuid): SnpProduct | undefined {
  if (cpuid.family === 0x19) {
    if (cpuid.model <= 0x0f) return 'Milan';
    if ((cpuid.model >= 0x10 && cpuid.model <= 0x1f) || (cpuid.model >= 0xa0 && cpuid.model <= 0xaf)) return 'Genoa';
  }
  if (cpuid.family === 0x1a && cpuid.model <= 0x11) return 'Turin';
  return undefined;
}

/**
 * The product a VCEK/VLEK names: its productName extension is "Milan-B0", "Genoa", "Turin" ...
 * (VCEK spec 57230, table 9); Siena and Bergamo chips carry Genoa keys.
 */
export function productFromName(name: string): SnpProduct | undefined {
  const base = name.split('-')[0].trim().toLowerCase();
  if (base === 'milan') return 'Milan';
  if (base === 'genoa' || base === 'siena' || base === 'bergamo') return 'Genoa';
  if (base === 'turin') return 'Turin';
  return undefined;
}

export function assertProduct(value: string): SnpProduct {
  const product = SNP_PRODUCTS.find((p) => p.toLowerCase() === value.toLowerCase());
  if (!product) throw new SigilError('snp.product_unknown', `"${value}" is not an SEV-SNP product Sigil knows (Milan, Genoa, Turin)`, { product: value });
  return product;
}
