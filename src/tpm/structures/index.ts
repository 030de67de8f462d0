export * from './basic.ts';
export * from './public.ts';
export * from './sensitive.ts';
export * from './signature.ts';
export * from './attest.ts';
export * from './nv.ts';
export * from './creation.ts';
export * from './capability.ts';
