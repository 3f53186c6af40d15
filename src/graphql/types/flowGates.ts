import { FlowGates, type FlowGate, type GateChange, type GateScope } from '../../queue/flowGates.js';
import { LIMITS } from '../../queue/limits.js';
import { builder } from '../builder.js';
import type { WaitReason } from '../../jobs/states.js';
import { JobWaitReasonEnum } from './job.js';

/**
 * Queues and job types as flow control sees them: each one's cluster-wide concurrency cap and pause,
 * and what its jobs are doing. The operator's side of src/queue/flowGates.ts.
 */

const GateScopeEnum = builder.enumType('GateScope', {
  description: 'What a flow-control gate applies to.',
  values: {
    QUEUE: { description: 'A named queue: every job submitted to it.' },
    TYPE: { description: 'A job type: every job of it, whatever its queue.' },
    KEY: {
      description:
        'A concurrency key: every job submitted with it (`concurrencyKey`). A template "prefix:*" gives each key starting with ' +
        "the prefix a gate of its own with its settings; it is listed with its keys' counts together.",
    },
  },
});

const RateLimitRef = builder.objectRef<{ max: number; intervalMs: number }>('RateLimit').implement({
  description: 'At most `max` starts in any window of `intervalMs`, across every process.',
  fields: (t) => ({ max: t.exposeInt('max'), intervalMs: t.exposeInt('intervalMs') }),
});

const RateLimitInput = builder.inputType('RateLimitInput', {
  fields: (t) => ({
    max: t.int({ required: true, description: `Starts per window, 0 to ${LIMITS.gateConcurrency}.` }),
    intervalMs: t.int({
      required: true,
      description: `The window, ${LIMITS.rateIntervalMs.min} to ${LIMITS.rateIntervalMs.max} ms (freed starts are handed on each maintenance pass).`,
    }),
  }),
});

const WaitCountRef = builder.objectRef<{ reason: WaitReason; count: number }>('WaitCount').implement({
  description: 'How many waiting jobs one reason holds back.',
  fields: (t) => ({
    reason: t.field({ type: JobWaitReasonEnum, resolve: (row) => row.reason }),
    count: t.exposeInt('count'),
  }),
});

export const FlowGateRef = builder.objectRef<FlowGate>('FlowGate').implement({
  description:
    "A queue's or job type's flow control: a cap on its jobs holding a slot (ready or running) across every process, " +
    'and a pause. Jobs over the cap or paused wait outside the claim path (waitingFor says which).',
  fields: (t) => ({
    scope: t.field({ type: GateScopeEnum, resolve: (gate) => gate.scope }),
    name: t.exposeString('name', { description: 'The queue or job type.' }),
    maxRunning: t.exposeInt('maxRunning', { nullable: true, description: 'The cap; null: none.' }),
    paused: t.exposeBoolean('paused', { description: 'Running jobs finish, none starts, submits are accepted.' }),
    used: t.exposeInt('used', { description: 'Jobs holding one of its units (ready or running) under the cap.' }),
    rateLimit: t.field({ type: RateLimitRef, nullable: true, resolve: (gate) => gate.rateLimit }),
    rateUsed: t.exposeInt('rateUsed', { description: 'Starts counted in the current window, plus ready jobs that hold a start.' }),
    ready: t.exposeInt('ready', { description: 'QUEUED and claimable now.' }),
    running: t.exposeInt('running'),
    waiting: t.exposeInt('waiting', { description: 'QUEUED and due, but held back by a limit or a pause.' }),
    waitingFor: t.field({
      type: [WaitCountRef],
      description:
        "Its waiting jobs (`waiting`) by what holds each back: this gate, another of the job's gates, or its user's limit " +
        "(the first reason in the order Job.waitingFor names them). Counted when asked, over the gate's waiting jobs.",
      resolve: (gate, _args, ctx) => ctx.queue.flowGates.waitingReasons(gate),
    }),
    blockedBy: t.field({
      type: JobWaitReasonEnum,
      nullable: true,
      description:
        'What this gate itself holds its waiting jobs back for (paused, cap reached, rate used up); null when it has room, ' +
        "and its waiting jobs wait for their users' slots or their other gate.",
      resolve: (gate) => FlowGates.blockedBy(gate),
    }),
  }),
});

const changeArgs = (t: Parameters<Parameters<typeof builder.mutationFields>[0]>[0]) => ({
  name: t.arg.string({ required: true }),
  maxRunning: t.arg.int({
    description: `The cap (0 to ${LIMITS.gateConcurrency}; 0 admits none); null removes it; left out: unchanged.`,
  }),
  paused: t.arg.boolean({ description: 'Pause or resume; left out: unchanged.' }),
  rateLimit: t.arg({ type: RateLimitInput, description: 'The rate limit; null removes it; left out: unchanged.' }),
});

function changeOf(args: {
  maxRunning?: number | null;
  paused?: boolean | null;
  rateLimit?: { max: number; intervalMs: number } | null;
}): GateChange {
  const change: GateChange = {};
  if (args.maxRunning !== undefined) change.maxRunning = args.maxRunning;
  if (args.paused != null) change.paused = args.paused;
  if (args.rateLimit !== undefined) change.rateLimit = args.rateLimit;
  return change;
}

builder.queryFields((t) => ({
  flowGates: t.field({
    type: [FlowGateRef],
    description: 'Every queue (configured, named by a job type, or `default`) and every configured job type, with their caps and counts.',
    authScopes: { ADMIN: true, WORKER: true },
    resolve: (_root, _args, ctx) => ctx.queue.flowGates.list(),
  }),
}));

builder.mutationFields((t) => {
  const configure = (scope: GateScope, what: string) =>
    t.field({
      type: FlowGateRef,
      description:
        `Sets a ${what}'s cluster-wide concurrency cap and rate limit, and/or pauses or resumes it. Takes effect at once: ready jobs past a lowered cap ` +
        '(all of them when paused) go back to waiting, lowest ranked first; running jobs finish; waiting jobs take the room a raised cap ' +
        'or a resume makes.',
      args: changeArgs(t),
      authScopes: { ADMIN: true },
      resolve: async (_root, args, ctx) => {
        const change = changeOf(args);
        ctx.logger.info({ scope, name: args.name, ...change }, 'flow gate set');
        return ctx.queue.flowGates.configure(scope, args.name, change);
      },
    });
  return {
    configureQueue: configure('QUEUE', 'queue'),
    configureJobType: configure('TYPE', 'job type'),
    configureKey: configure('KEY', 'concurrency key (or every key of a template "prefix:*")'),
  };
});
