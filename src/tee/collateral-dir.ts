import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildtraceError } from '../errors.js';
import type { TdxCollateral } from './tdx-collateral.js';

/** File names of a collateral directory (README "TDX collateral"). */
const COLLATERAL_FILES = {
  tcbInfo: 'tcb-info.json',
  qeIdentity: 'qe-identity.json',
  signingChain: 'tcb-signing-chain.pem',
  pckCrl: 'pck-crl.der',
  rootCrl: 'root-crl.der',
} as const;

export function loadTdxCollateral(dir: string): TdxCollateral {
  const read = (name: string): Buffer => {
    try {
      return readFileSync(join(dir, name));
    } catch (err) {
      throw new BuildtraceError(
        'FILE_UNREADABLE',
        `collateral ${join(dir, name)}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'} (a collateral directory holds ${Object.values(COLLATERAL_FILES).join(', ')})`,
        { subject: join(dir, name) },
      );
    }
  };
  return {
    source: dir,
    tcbInfo: read(COLLATERAL_FILES.tcbInfo).toString('utf8'),
    qeIdentity: read(COLLATERAL_FILES.qeIdentity).toString('utf8'),
    signingChainPem: read(COLLATERAL_FILES.signingChain).toString('utf8'),
    pckCrl: read(COLLATERAL_FILES.pckCrl),
    rootCrl: read(COLLATERAL_FILES.rootCrl),
  };
}
