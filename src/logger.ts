import { pino, type Logger, type TransportTargetOptions } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * One root logger per process; modules take children of it (`logger.child({ module })`). JSON lines
 * on stdout (pretty on a terminal), and also into `log.file` when one is configured.
 */
export function createLogger(config: Pick<Config, 'log'>): Logger {
  const { level, pretty, file } = config.log;
  if (!pretty && !file) return pino({ level });
  const targets: TransportTargetOptions[] = [
    pretty
      ? { target: 'pino-pretty', level, options: { translateTime: 'SYS:HH:MM:ss.l', destination: 1 } }
      : { target: 'pino/file', level, options: { destination: 1 } },
  ];
  if (file) targets.push({ target: 'pino/file', level, options: { destination: file, mkdir: true } });
  return pino({ level }, pino.transport({ targets }));
}
