import { BuildtraceError } from '../errors.js';
import { dumpPath } from '../store/nar-dump.js';
import type { DirectBoot } from './measure/kernel-hashes.js';

/**
 * The documented layout of a builder image (docs/rebuilding-builders.md): one store path, a
 * directory holding regular files (not symlinks)
 *   firmware.fd   the OVMF image QEMU gets with -bios (required)
 *   kernel        the kernel QEMU direct-boots with -kernel (optional)
 *   initrd        -initrd (optional, needs kernel)
 *   cmdline       the exact -append string, UTF-8, no NUL, no trailing newline (optional, needs kernel)
 * Other entries may exist (launch notes, a README); they are covered by the NAR hash only.
 */
const IMAGE_FILES = { firmware: 'firmware.fd', kernel: 'kernel', initrd: 'initrd', cmdline: 'cmdline' } as const;

interface BuilderImage {
  readonly path: string;
  readonly narSha256: string;
  readonly firmware: Buffer;
  readonly boot?: DirectBoot;
}

function bad(path: string, msg: string): never {
  throw new BuildtraceError('IMAGE_INVALID', `builder image ${path}: ${msg}`, { subject: path });
}

/** Reads an image's bytes once: the NAR hash and the layout files come from the same read. */
export async function readBuilderImage(path: string): Promise<BuilderImage> {
  const { narSha256, files } = await dumpPath(path, Object.values(IMAGE_FILES));
  const firmware = files.get(IMAGE_FILES.firmware);
  if (!firmware) bad(path, `no regular file ${IMAGE_FILES.firmware} (the OVMF image) in it`);
  const kernel = files.get(IMAGE_FILES.kernel);
  const initrd = files.get(IMAGE_FILES.initrd);
  const cmdline = files.get(IMAGE_FILES.cmdline);
  if (!kernel && (initrd || cmdline)) bad(path, `has ${initrd ? 'initrd' : 'cmdline'} but no kernel`);
  let append: string | undefined;
  if (cmdline) {
    append = new TextDecoder('utf-8', { fatal: false }).decode(cmdline);
    if (!Buffer.from(append, 'utf8').equals(cmdline)) bad(path, 'cmdline is not UTF-8');
    if (append.includes('\0')) bad(path, 'cmdline contains a NUL byte');
    if (append.endsWith('\n')) bad(path, 'cmdline ends with a newline (QEMU -append would not pass one; write it with printf %s)');
  }
  return { path, narSha256, firmware, ...(kernel ? { boot: { kernel, ...(initrd ? { initrd } : {}), ...(append ? { append } : {}) } } : {}) };
}
