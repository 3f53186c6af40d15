import { setTimeout as sleep } from 'node:timers/promises';
import { ConflictError, InvalidInputError } from '../errors.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { JobRow } from '../jobs/columns.js';
import { WAIT_REASONS, waitsForDependencies, type WaitReason } from '../jobs/states.js';
import { LIMITS } from './limits.js';
import type { QueueSettings } from './queueTypes.js';
import { GATE_SCOPE_NAMES, type GateScope } from './sql/gateUnits.js';
import {
  type FlowGateRow,
  gateCountHolders,
  gateDemote,
  gateList,
  gateSettingsList,
  gateUpsert,
  gateWaitingReasons,
  keyGateSettingsList,
} from './sql/gates.js';
import { waitOutInFlight } from './inFlight.js';
import { jobPromoteWaiting } from './sql/maintenance.js';
import { keyTemplateApply } from './sql/keyGates.js';
import { checkKeyGateName, checkLength, checkRange, isKeyTemplate } from './validation.js';
import { retryOnDeadlock } from '../db/postgresError.js';

export type { GateScope };

/** A change to a gate: undefined leaves a setting as it is; null removes a cap or a rate limit. */
export interface GateChange {
  maxRunning?: number | null;
  paused?: boolean;
  /** At most `max` starts in any window of `intervalMs`. */
  rateLimit?: { max: number; intervalMs: number } | null;
}

/** Queues by name, each with its cap and pause, as a config file or the library API declares them. */
export type QueueDefinitions = Readonly<Record<string, GateChange>>;

export type FlowGate = Awaited<ReturnType<typeof gateList>>[number];

/** How long configure waits for the transactions that could not see a new gate (say, a stuck app transaction). */
const IN_FLIGHT_WAIT_MS = 30_000;
/** Rounds of demotion before configure gives up on rows held by other statements (5 ms × round pauses: ~4 s). */
const SETTLE_ROUNDS = 40;
/** How old the gate settings behind waitingFor may be: they change by an operator's hand, seldom. */
const SETTINGS_TTL_MS = 250;
/** The wait reasons in the order WAIT_REASONS lists them: the more fundamental first. */
const WAIT_REASON_NAMES = Object.keys(WAIT_REASONS) as WaitReason[];

/**
 * Cluster-wide flow control per queue and per job type: a concurrency cap, a rate limit and a pause,
 * held in the database (flow_gates) and applied where jobs are admitted to the claim index
 * (sql/admission.ts).
 */
export class FlowGates {
  readonly #db: PrismaClient;
  readonly #settings: QueueSettings;
  #cached: { at: number; gates: Promise<Map<string, FlowGateRow>> } | null = null;

  constructor(deps: { prisma: PrismaClient; settings: QueueSettings }) {
    this.#db = deps.prisma;
    this.#settings = deps.settings;
  }

  /**
   * Sets a queue's or type's cap, rate limit and pause, and brings its jobs in line: running jobs finish; ready
   * jobs past a lowered cap (all of them when paused) go back to waiting, lowest ranked first; waiting
   * jobs take the room a raised cap or a resume made. Returns the gate with its counts.
   */
  async configure(scope: GateScope, name: string, change: GateChange): Promise<FlowGate> {
    if (!GATE_SCOPE_NAMES.includes(scope)) throw new InvalidInputError(`scope must be one of ${GATE_SCOPE_NAMES.join(', ')}.`);
    if (scope === 'KEY') checkKeyGateName(name);
    else checkLength(scope === 'QUEUE' ? 'queue' : 'type', name, scope === 'QUEUE' ? LIMITS.queueLength : LIMITS.typeLength);
    if (change.maxRunning != null) checkRange('maxRunning', change.maxRunning, 0, LIMITS.gateConcurrency);
    if (change.rateLimit != null) {
      checkRange('rateLimit.max', change.rateLimit.max, 0, LIMITS.gateConcurrency);
      checkRange('rateLimit.intervalMs', change.rateLimit.intervalMs, LIMITS.rateIntervalMs.min, LIMITS.rateIntervalMs.max);
    }
    const [gate] = await gateUpsert(this.#db, scope, name, change);
    // A statement that admitted a job of the gate before the gate existed did not count it: those
    // still open are waited out, so that the counts below see their jobs (for a key template, before
    // its keys' gates are made: a job submitted in an application's open transaction was not seen,
    // and its key's gate, made at the next submit, counted it as 0).
    if (gate?.created) await this.#waitForInFlight();
    if (scope === 'KEY' && isKeyTemplate(name)) {
      // The template's settings go to its keys' gates; each key with live jobs is brought in line.
      const keys = await keyTemplateApply(this.#db, name);
      if (!gate?.created && keys.some((key) => key.made)) await this.#waitForInFlight();
      for (const key of keys) await this.#bringInLine(scope, key.name);
    } else {
      await this.#bringInLine(scope, name);
    }
    this.#cached = null;
    return (await this.list()).find((g) => g.scope === scope && g.name === name)!;
  }

  /**
   * A gate's due waiting jobs by what holds each back (WAIT_REASONS' names, in their order): the
   * gate itself, another of the job's gates, or its user's limit.
   */
  async waitingReasons(gate: Pick<FlowGate, 'scope' | 'name'>): Promise<{ reason: WaitReason; count: number }[]> {
    const rows = await gateWaitingReasons(this.#db, gate.scope, gate.name, WAIT_REASON_NAMES);
    return rows.map((row) => ({ reason: row.reason as WaitReason, count: row.count }));
  }

  /** Every queue (configured, named by a job type, or `default`) and configured type, with counts. */
  list(): Promise<FlowGate[]> {
    return gateList(this.#db);
  }

  /**
   * What a gate itself holds its waiting jobs back for (paused, its cap reached, its rate used up), or
   * null when it has room: then its waiting jobs wait for their users' slots or their other gate.
   */
  static blockedBy(
    gate: Pick<FlowGate, 'scope' | 'name' | 'paused' | 'maxRunning' | 'used' | 'rateLimit' | 'rateUsed'>,
  ): WaitReason | null {
    if (gate.paused) return `${gate.scope}_PAUSED`;
    // A key template's units are its keys' together: each key's own gate says whether it is full.
    if (gate.scope === 'KEY' && isKeyTemplate(gate.name)) return null;
    if (gate.maxRunning !== null && gate.used >= gate.maxRunning) return `${gate.scope}_CONCURRENCY`;
    if (gate.rateLimit && gate.rateUsed >= gate.rateLimit.max) return 'RATE_LIMIT';
    return null;
  }

  /** Why a QUEUED job is not claimable, or null when it is (see WAIT_REASONS). */
  async waitReason(job: Pick<JobRow, 'status' | 'holdsSlot' | 'runAt' | 'queue' | 'type' | 'concurrencyKey'>): Promise<WaitReason | null> {
    if (job.status !== 'QUEUED' || job.holdsSlot) return null;
    if (waitsForDependencies(job)) return 'DEPENDENCIES';
    if (new Date(job.runAt).getTime() > Date.now()) return 'RUN_AT';
    const gates = await this.#settingsNow();
    // A key's gate made from a template is read on its own: there may be one per user.
    const keyGate = job.concurrencyKey === null ? undefined : (await keyGateSettingsList(this.#db, [job.concurrencyKey]))[0];
    // Each of its gates' own reason; of them, the one WAIT_REASONS names first (pauses, then caps, then rates).
    const reasons = [gates.get(`QUEUE:${job.queue}`), gates.get(`TYPE:${job.type}`), keyGate].map((gate) =>
      gate ? FlowGates.blockedBy(gate) : null,
    );
    return WAIT_REASON_NAMES.find((reason) => reasons.includes(reason)) ?? 'USER_CONCURRENCY';
  }

  /** Counts the jobs that hold their slot without the gate's unit, then settles the gate. */
  async #bringInLine(scope: GateScope, name: string): Promise<void> {
    await this.#retryingDeadlocks(() => gateCountHolders(this.#db, scope, name));
    await this.#settle(scope, name);
  }

  /**
   * Demotes until no ready job is past the cap: rows another statement holds right then (a claim, a
   * release) are skipped, so it runs again, after a short pause when a round could demote none.
   */
  async #settle(scope: GateScope, name: string): Promise<void> {
    for (let round = 1; ; round++) {
      // The changed jobs' events go out from the statement itself (NOTIFY).
      const [outcome] = await this.#retryingDeadlocks(() => gateDemote(this.#db, scope, name, this.#settings));
      if (!outcome || outcome.skipped === 0) break;
      if (round === SETTLE_ROUNDS) {
        throw new ConflictError(
          `The ${scope.toLowerCase()} ${name} is set, but ${outcome.skipped} of its ready jobs stayed locked by other statements: set it again.`,
        );
      }
      if (outcome.demoted === 0) await sleep(5 * round);
    }
    await this.#retryingDeadlocks(() => jobPromoteWaiting(this.#db, { userIds: [], gates: [{ scope, name }] }, this.#settings));
  }

  async #waitForInFlight(): Promise<void> {
    const open = await waitOutInFlight(this.#db, 'transactions', IN_FLIGHT_WAIT_MS);
    if (open.length > 0) {
      throw new ConflictError(
        `The gate is set, but ${open.length} transaction(s) begun before it are still open (pids ${open.map((t) => t.pid).join(', ')}); ` +
          'jobs they admit are counted once they end: set it again then.',
      );
    }
  }

  /** Again after PostgreSQL's deadlock_detected: a gate change racing a statement that locks the gates the other way. */
  #retryingDeadlocks<T>(run: () => Promise<T>): Promise<T> {
    return retryOnDeadlock(run, { retries: 4, pauseMs: (attempt) => 10 * attempt });
  }

  #settingsNow(): Promise<Map<string, FlowGateRow>> {
    if (!this.#cached || Date.now() - this.#cached.at > SETTINGS_TTL_MS) {
      const gates = gateSettingsList(this.#db).then((rows) => new Map(rows.map((row) => [`${row.scope}:${row.name}`, row])));
      gates.catch(() => (this.#cached = null));
      this.#cached = { at: Date.now(), gates };
    }
    return this.#cached.gates;
  }
}
