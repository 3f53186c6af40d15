import { randomBytes } from 'node:crypto';
import { chmod, open, readFile, stat } from 'node:fs/promises';
import type { Logger } from '../logger.js';

/**
 * The password every data folder was initialised with before each got its own. It was documented,
 * so any local user could log in as the superuser (and run `COPY … TO PROGRAM`): it is only ever
 * used to log in once more and replace it.
 */
export const LEGACY_PASSWORD = 'conveyor';

const OWNER_ONLY = 0o600;

/** 32 random bytes, base64url: 256 bits, and no character that needs quoting in a URL or in SQL. */
export function generatePassword(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The password stored in `file`, or null if there is none. A file that others may read (someone
 * copied the folder, or widened its mode) is put back to 0600 first.
 */
export async function readPasswordFile(file: string, logger?: Logger): Promise<string | null> {
  let mode: number;
  try {
    ({ mode } = await stat(file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  if ((mode & 0o777) !== OWNER_ONLY) {
    logger?.warn(
      { file, mode: `0${(mode & 0o777).toString(8)}` },
      'the embedded PostgreSQL password file was readable by others: set it back to 0600',
    );
    await chmod(file, OWNER_ONLY);
  }
  return (await readFile(file, 'utf8')).trim();
}

/** Creates `file` holding `password`, mode 0600 from its first byte on; fails if the file exists. */
export async function writePasswordFile(file: string, password: string): Promise<void> {
  const handle = await open(file, 'wx', OWNER_ONLY);
  try {
    await handle.chmod(OWNER_ONLY); // open()'s mode passes through the umask, which could only narrow it
    await handle.writeFile(`${password}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
