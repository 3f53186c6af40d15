import { LIMITS } from '../../queue/limits.js';
import { SCHEDULE_LIMITS } from '../../schedules/definition.js';
import { MISSED_TICK_POLICIES } from '../../schedules/missedTicks.js';
import { NEXT_RUNS_MAX, Schedules, type ScheduleRow } from '../../schedules/schedules.js';
import { INTERVAL_MS } from '../../schedules/timing.js';
import { builder } from '../builder.js';
import { jobFromRow } from '../jobSource.js';
import { JobRef } from './job.js';

const ScheduleSourceEnum = builder.enumType('ScheduleSource', {
  description: 'Where a schedule is defined: the config file wins (the API may only pause and resume its schedules).',
  values: {
    CONFIG: { description: 'The config file; written at each start, deleted when removed from the file.' },
    API: { description: 'upsertSchedule; changed and deleted over the API only.' },
  },
});

const MissedTicksEnum = builder.enumType('MissedTickPolicy', {
  description: 'What a schedule does with ticks missed while nothing ran (not while it was paused).',
  values: {
    SKIP: { description: 'No job for them: the next job is the next tick on time (less than a minute late).' },
    RUN_LAST: { description: 'One job, for the latest missed tick.' },
    RUN_EACH: { description: 'One job per missed tick, the latest maxCatchUp of them.' },
  },
});

const JobTemplateRef = builder.objectRef<ScheduleRow>('ScheduleJobTemplate').implement({
  description: "What each tick's job is made of.",
  fields: (t) => ({
    type: t.exposeString('jobType'),
    payload: t.expose('payload', { type: 'JSON' }),
    userId: t.exposeString('userId'),
    priority: t.exposeInt('priority'),
    maxAttempts: t.exposeInt('maxAttempts', { nullable: true, description: "Null: the job type's default." }),
    queue: t.exposeString('queue', {
      nullable: true,
      description: "The named queue of its jobs; null: the job type's queue, else `default`.",
    }),
    concurrencyKey: t.exposeString('concurrencyKey', { nullable: true, description: 'The concurrency key of its jobs; null: none.' }),
  }),
});

const ScheduleRef = builder.objectRef<ScheduleRow>('Schedule').implement({
  description: 'A recurring schedule: one job per tick, whatever the number of processes (admin only).',
  fields: (t) => ({
    name: t.exposeString('name'),
    source: t.field({ type: ScheduleSourceEnum, resolve: (s) => s.source }),
    cron: t.exposeString('cron', { nullable: true, description: 'A cron expression (5 fields, or 6 with seconds first).' }),
    timeZone: t.exposeString('timeZone', { nullable: true, description: 'The IANA time zone the cron expression is read in.' }),
    intervalMs: t.exposeInt('intervalMs', { nullable: true, description: 'A fixed interval, its ticks aligned to the Unix epoch.' }),
    job: t.field({ type: JobTemplateRef, resolve: (s) => s }),
    missedTicks: t.field({ type: MissedTicksEnum, resolve: (s) => s.missedTicks }),
    maxCatchUp: t.exposeInt('maxCatchUp', { description: 'RUN_EACH makes at most this many jobs after a gap.' }),
    paused: t.exposeBoolean('paused'),
    nextRuns: t.field({
      type: ['DateTime'],
      description: `The next ticks (none while paused); the first may be due and about to be fired. count: 0–${NEXT_RUNS_MAX}.`,
      args: { count: t.arg.int({ defaultValue: 5, required: true }) },
      resolve: (s, { count }) => Schedules.nextRuns(s, count),
    }),
    lastTickAt: t.expose('lastTickAt', { type: 'DateTime', nullable: true }),
    lastJob: t.field({
      type: JobRef,
      nullable: true,
      description: "The latest tick's job (null before the first, or once the job was pruned).",
      resolve: async (s, _args, ctx) => {
        const row = s.lastJobId ? await ctx.queue.getJob(s.lastJobId) : null;
        return row ? jobFromRow(row) : null;
      },
    }),
    lastError: t.exposeString('lastError', {
      nullable: true,
      description: 'Why the latest tick made no job (e.g. a job type this server does not know); cleared by the next job made.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const ScheduleJobInput = builder.inputType('ScheduleJobInput', {
  fields: (t) => ({
    type: t.string({ required: true }),
    payload: t.field({ type: 'JSON', description: "Validated against the type's schema now and at each tick. Default {}." }),
    userId: t.string({ required: true, description: 'Whose jobs they are (fairness, concurrency limit).' }),
    priority: t.int({ description: `-${LIMITS.priority} to ${LIMITS.priority}, default 0.` }),
    maxAttempts: t.int(),
    queue: t.string({ description: "The named queue of its jobs (as submitJob's queue); default: the type's queue, else `default`." }),
    concurrencyKey: t.string({
      description: "The concurrency key of its jobs (as submitJob's concurrencyKey: its key's cap and rate limit).",
    }),
  }),
});

const ScheduleInput = builder.inputType('ScheduleInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: `1–${SCHEDULE_LIMITS.nameLength} letters, digits and _ . : -` }),
    cron: t.string({ description: 'A cron expression; exactly one of cron and intervalMs.' }),
    timeZone: t.string({ description: 'IANA time zone of cron (default UTC).' }),
    intervalMs: t.int({ description: `Every this many ms (${INTERVAL_MS.min} or more), aligned to the Unix epoch.` }),
    job: t.field({ type: ScheduleJobInput, required: true }),
    missedTicks: t.field({ type: MissedTicksEnum, description: `Default SKIP (${MISSED_TICK_POLICIES.join(', ')}).` }),
    maxCatchUp: t.int({ description: `For RUN_EACH: 1–${SCHEDULE_LIMITS.maxCatchUp}, default 10.` }),
    paused: t.boolean({ description: 'Create or replace it paused (or running); left out, a replaced schedule keeps its state.' }),
  }),
});

builder.queryFields((t) => ({
  schedules: t.field({
    type: [ScheduleRef],
    description: 'Every recurring schedule, by name (admin only).',
    authScopes: { ADMIN: true },
    resolve: (_root, _args, ctx) => ctx.schedules.list(),
  }),
  schedule: t.field({
    type: ScheduleRef,
    nullable: true,
    description: 'A schedule by name; null when there is none (admin only).',
    args: { name: t.arg.string({ required: true }) },
    authScopes: { ADMIN: true },
    resolve: (_root, { name }, ctx) => ctx.schedules.get(name),
  }),
}));

builder.mutationFields((t) => ({
  upsertSchedule: t.field({
    type: ScheduleRef,
    description: 'Creates or replaces a schedule (admin only). CONFLICT for one from the config file.',
    args: { input: t.arg({ type: ScheduleInput, required: true }) },
    authScopes: { ADMIN: true },
    resolve: async (_root, { input }, ctx) => {
      const { paused, ...definition } = input;
      const row = await ctx.schedules.upsert(definition, paused ?? null);
      ctx.logger.info({ schedule: row.name }, 'schedule upserted');
      return row;
    },
  }),
  pauseSchedule: t.field({
    type: ScheduleRef,
    description: 'Stops making jobs until resumed (admin only).',
    args: { name: t.arg.string({ required: true }) },
    authScopes: { ADMIN: true },
    resolve: (_root, { name }, ctx) => ctx.schedules.pause(name),
  }),
  resumeSchedule: t.field({
    type: ScheduleRef,
    description: 'Makes jobs again from the next tick on; ticks that came while paused are not made up (admin only).',
    args: { name: t.arg.string({ required: true }) },
    authScopes: { ADMIN: true },
    resolve: (_root, { name }, ctx) => ctx.schedules.resume(name),
  }),
  deleteSchedule: t.field({
    type: ScheduleRef,
    description: 'Deletes a schedule made over the API and returns it; its jobs stay (admin only).',
    args: { name: t.arg.string({ required: true }) },
    authScopes: { ADMIN: true },
    resolve: async (_root, { name }, ctx) => {
      const row = await ctx.schedules.delete(name);
      ctx.logger.info({ schedule: name }, 'schedule deleted');
      return row;
    },
  }),
}));
