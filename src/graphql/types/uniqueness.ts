import { UNIQUE_MODES, type UniqueMode } from '../../jobs/columns.js';
import { LIMITS } from '../../queue/limits.js';
import { builder } from '../builder.js';
import { JobRef, textField } from './job.js';

/** The modes of a submit's `unique` (src/queue/uniqueness.ts says what each does). */
const MODE_DESCRIPTIONS: Record<UniqueMode, string> = {
  UNIQUE_FOR: 'A submit within forMs of the job that opened the window returns that job, whatever its state.',
  THROTTLE: 'At most one job per key per period of forMs (periods counted from the Unix epoch: an hour is a clock hour).',
  DEBOUNCE:
    'The job runs forMs after the last submit: while it is QUEUED and never claimed, a submit replaces its payload, priority, ' +
    'tags, metadata and deadline and pushes its runAt; once it ran, a submit makes a new job.',
};

export const UniqueModeEnum = builder.enumType('UniqueMode', {
  values: Object.fromEntries(UNIQUE_MODES.map((mode) => [mode, { description: MODE_DESCRIPTIONS[mode] }])) as Record<
    UniqueMode,
    { description: string }
  >,
});

/**
 * One input object rather than three fields on SubmitJobInput: key, window and mode only make sense
 * together, and the mode says in one word how the key is used (BullMQ's `deduplication: { id, ttl }`
 * has the same shape).
 */
export const UniqueInputRef = builder.inputType('UniqueInput', {
  description:
    'Unique for a while, throttled or debounced by a key of the user (not with idempotencyKey, which is unique for ever). ' +
    'Concurrent submits with one key are serialized across every process.',
  fields: (t) => ({
    key: t.string({ required: true, description: `1 to ${LIMITS.uniqueKeyLength} characters, per user.` }),
    forMs: t.int({
      required: true,
      description: `The window (UNIQUE_FOR), the period (THROTTLE) or the delay after the last submit (DEBOUNCE): 1 to ${LIMITS.uniqueForMs} ms.`,
    }),
    mode: t.field({ type: UniqueModeEnum, defaultValue: 'UNIQUE_FOR' }),
  }),
});

builder.objectFields(JobRef, (t) => ({
  uniqueKey: t.string({
    nullable: true,
    description: 'The key of its `unique` submit.',
    resolve: (job, _args, ctx, info) => textField(job, 'uniqueKey', ctx, info),
  }),
  uniqueMode: t.field({ type: UniqueModeEnum, nullable: true, resolve: (job) => job.uniqueMode ?? null }),
  uniqueUntil: t.expose('uniqueUntil', {
    type: 'DateTime',
    nullable: true,
    description: 'UNIQUE_FOR and THROTTLE: until then, a submit with its key returns this job.',
  }),
}));
