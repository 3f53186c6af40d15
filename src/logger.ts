import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/** One root logger per process; modules take children of it (`logger.child({ module })`). */
export function createLogger(config: Pick<Config, 'log'>): Logger {
  return pino({
    level: config.log.level,
    transport: config.log.pretty ? { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } : undefined,
  });
}
