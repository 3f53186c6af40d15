// @ts-check
// Wires the page: one live connection, one job store, and the panels rendered from them.

import { authorizationFor, readApiKey, saveApiKey } from './apiKey.js';
import { partOf } from './dom.js';
import { createGraphQLHttpClient, GraphQLRequestError } from './graphqlHttp.js';
import { JobLogLines } from './jobLogLines.js';
import { JobStore } from './jobStore.js';
import { LiveFeed } from './liveFeed.js';
import {
  ALL_JOBS_UPDATED,
  CANCEL_JOB,
  JOB,
  JOB_LOG_APPENDED,
  JOB_LOGS,
  JOB_SUMMARY_BY_ID,
  ONE_JOB_UPDATED,
  QUEUE_STATS_UPDATED,
  RECENT_JOBS,
  RETRY_JOB,
  USER_JOBS,
} from './operations.js';
import { QueuesPanel } from './queuesPanel.js';
import { SchedulesPanel } from './schedulesPanel.js';
import { SearchPanel } from './searchPanel.js';
import { ThroughputPanel } from './throughputPanel.js';
import { renderConnectionStatus } from './views/connectionStatus.js';
import { ErrorList } from './views/errorList.js';
import { renderJobDetail } from './views/jobDetail.js';
import { FlowView } from './flowView.js';
import { renderJobList } from './views/jobList.js';
import { renderStats } from './views/statsBar.js';

/** @import { Job, JobStatus } from './types.js' */

/**
 * @typedef {object} RecentPanel
 * @property {JobStatus} status
 * @property {number} first
 * @property {(job: Job) => string} orderKey
 */
/** @typedef {'running' | 'failures'} RecentPanelName */

const GRAPHQL_PATH = '/graphql';
const RUNNING_SHOWN = 50;
const RECENT_FAILURES = 20;
const USER_JOBS_PAGE = 100;
/** Jobs re-read at once when the page finds it missed their changes (see loadRecent). */
const REREAD_BATCH = 10;

/**
 * The panels filled from `recentJobs` on open and after every reconnect, then kept live by the
 * jobUpdated stream. `orderKey` is the field recentJobs orders them by (newest first).
 * @type {Record<RecentPanelName, RecentPanel>}
 */
const RECENT = {
  running: { status: 'RUNNING', first: RUNNING_SHOWN, orderKey: (job) => job.startedAt ?? '' },
  failures: { status: 'FAILED', first: RECENT_FAILURES, orderKey: (job) => job.completedAt ?? job.updatedAt },
};
/** @type {(orderKey: RecentPanel['orderKey']) => (a: Job, b: Job) => number} */
const newestFirst = (orderKey) => (a, b) => orderKey(b).localeCompare(orderKey(a));

/**
 * The element index.html has for `selector`, of the given kind; a page without it is broken.
 * @template {Element} Kind
 * @param {string} selector
 * @param {new () => Kind} kind
 * @returns {Kind}
 */
function element(selector, kind) {
  return partOf(document, selector, kind, 'index.html');
}
/** @param {string} selector */
const $ = (selector) => element(selector, HTMLElement);
/** @param {string} selector */
const input = (selector) => element(selector, HTMLInputElement);
const panels = {
  running: $('#running .job-list'),
  failures: $('#failures .job-list'),
  userJobs: $('#user-jobs .job-list'),
  detail: $('#detail .detail-body'),
};

/**
 * What the page is looking at; everything else is derived from the store.
 * @type {{ selectedId: string | null, detailLoading: boolean, detailMissingId: string | null, stopDetailFeed: () => void, userId: string | null }}
 */
const view = {
  selectedId: null,
  detailLoading: false,
  detailMissingId: null,
  stopDetailFeed: () => {},
  userId: null,
};

const errors = new ErrorList($('#errors'));
const store = new JobStore({ isPinned: (id) => id === view.selectedId });
const logLines = new JobLogLines();
const request = createGraphQLHttpClient({ endpoint: GRAPHQL_PATH, getApiKey: readApiKey });
const feed = new LiveFeed({
  url: `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${GRAPHQL_PATH}`,
  connectionParams: () => {
    const authorization = authorizationFor(readApiKey());
    return authorization ? { authorization } : {};
  },
  onStatus: (state) => renderConnectionStatus($('#connection'), state),
  onError: (message) => errors.show([message]),
  // Events sent while the socket was down are gone: read what is on screen again. After the first
  // connection, the read made at startup may have missed changes made before the subscription began.
  onConnected: (reconnected) => (reconnected ? reloadOpenData() : void loadRecentJobs()),
});

/** @param {unknown} error */
function showRequestError(error) {
  if (error instanceof GraphQLRequestError) errors.show(error.messages);
  else errors.show([error instanceof Error ? error.message : String(error)]);
}

const search = new SearchPanel({
  section: $('#search'),
  request,
  store,
  showError: showRequestError,
  openJob: (id) => void openJob(id),
});

const flowView = new FlowView({
  request,
  feed,
  onChange: scheduleRender,
  showError: showRequestError,
});

const throughput = new ThroughputPanel({ section: $('#throughput'), request, showError: showRequestError });
const queues = new QueuesPanel({ section: $('#queues'), request, showError: showRequestError });
const schedules = new SchedulesPanel({
  section: $('#schedules'),
  request,
  showError: showRequestError,
  openJob: (id) => void openJob(id),
});

// Rendering is batched per frame: a burst of events costs one render, not one per event.
let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => {
    renderPending = false;
    render();
  });
}

function render() {
  const selectedId = view.selectedId;
  for (const [panel, { status, first, orderKey }] of /** @type {[RecentPanelName, RecentPanel][]} */ (Object.entries(RECENT))) {
    renderJobList(
      panels[panel],
      store.list((job) => job.status === status, newestFirst(orderKey)),
      {
        selectedId,
        showError: status === 'FAILED',
        limit: first,
      },
    );
  }
  renderJobList(
    panels.userJobs,
    view.userId
      ? store.list(
          (job) => job.userId === view.userId,
          (a, b) => b.createdAt.localeCompare(a.createdAt),
        )
      : [],
    { selectedId, showError: true, limit: USER_JOBS_PAGE },
  );
  search.render();
  renderJobDetail(panels.detail, {
    job: selectedId ? store.get(selectedId) : null,
    history: selectedId ? store.history(selectedId) : [],
    logs: { lines: logLines.list(), dropped: logLines.dropped },
    loading: view.detailLoading,
    missingId: view.detailMissingId,
    flow: flowView.state,
  });
}

/** @param {string} id */
async function openJob(id) {
  if (id === view.selectedId) return;
  view.stopDetailFeed();
  Object.assign(view, { selectedId: id, detailLoading: true, detailMissingId: null });
  rememberInAddress();
  scheduleRender();
  // The all-jobs stream leaves out payload and result (each costs a database read per event);
  // this one job's stream includes them, so a result shows up as soon as the job completes.
  const stopJobFeed = feed.subscribe(ONE_JOB_UPDATED, { id }, (data) => store.put(data.jobUpdated));
  // Live lines first, then the read: a line appended in between comes by one or the other (or both: merged by seq).
  logLines.reset(id);
  const stopLogFeed = feed.subscribe(JOB_LOG_APPENDED, { id }, (data) => {
    logLines.add(id, data.jobLogAppended.lines);
    scheduleRender();
  });
  view.stopDetailFeed = () => {
    stopJobFeed();
    stopLogFeed();
  };
  await Promise.all([loadJob(id), loadJobLogs(id)]);
}

/**
 * Reads the open job's log into logLines, a page at a time (live lines arrive meanwhile).
 * @param {string} id
 * @param {string | null} [after] the cursor of the page before
 */
async function loadJobLogs(id, after = null) {
  try {
    const { job } = await request(JOB_LOGS, { id, after });
    if (!job || view.selectedId !== id) return;
    logLines.add(id, job.logs.nodes);
    logLines.dropped = job.logsDropped;
    scheduleRender();
    if (job.logs.pageInfo.hasNextPage) await loadJobLogs(id, job.logs.pageInfo.endCursor);
  } catch (error) {
    showRequestError(error);
  }
}

/** @param {string} id */
async function loadJob(id) {
  try {
    const { job } = await request(JOB, { id });
    if (view.selectedId !== id) return;
    if (job) store.put(job);
    else view.detailMissingId = id;
    if (job?.flowRootId) void flowView.open(job.flowRootId);
    else flowView.close();
  } catch (error) {
    showRequestError(error);
  } finally {
    if (view.selectedId === id) view.detailLoading = false;
    scheduleRender();
  }
}

/** @param {string} userId */
async function loadUser(userId) {
  view.userId = userId;
  rememberInAddress();
  scheduleRender();
  try {
    const { userJobs } = await request(USER_JOBS, { userId, first: USER_JOBS_PAGE });
    for (const job of userJobs.nodes) store.put(job);
  } catch (error) {
    showRequestError(error);
  }
}

async function loadRecentJobs() {
  try {
    await Promise.all(Object.values(RECENT).map(loadRecent));
  } catch (error) {
    showRequestError(error);
  }
}

/**
 * Merges the latest jobs in one state into the store. The page may also hold jobs in that state
 * that left it while no events reached the page (the socket was down): those the answer would
 * have included (it is not full, or they sort before its last job) but did not are read again.
 * Jobs changed by an event while the query ran are left alone: the event is at least as new.
 * @param {RecentPanel} panel
 */
async function loadRecent({ status, first, orderKey }) {
  const held = store.list((job) => job.status === status).map((job) => ({ id: job.id, version: job.version }));
  const { recentJobs } = await request(RECENT_JOBS, { status, first });
  for (const job of recentJobs) store.put(job);

  const answered = new Set(recentJobs.map((job) => job.id));
  const lastAnswered = recentJobs.length >= first ? recentJobs.at(-1) : undefined;
  const last = lastAnswered ? orderKey(lastAnswered) : null;
  const missed = held
    .filter(({ id, version }) => {
      const job = store.get(id);
      return !answered.has(id) && job?.status === status && job.version === version && (last === null || orderKey(job) > last);
    })
    .map(({ id }) => id);
  for (let i = 0; i < missed.length; i += REREAD_BATCH) {
    await Promise.all(missed.slice(i, i + REREAD_BATCH).map(rereadJob));
  }
}

/** @param {string} id */
async function rereadJob(id) {
  const { job } = await request(JOB_SUMMARY_BY_ID, { id });
  if (job) {
    store.put(job);
    return;
  }
  if (id === view.selectedId) view.detailMissingId = id;
  store.forget(id);
}

function reloadOpenData() {
  void loadRecentJobs();
  if (view.selectedId) void loadJob(view.selectedId);
  if (view.selectedId) void loadJobLogs(view.selectedId);
  if (view.userId) void loadUser(view.userId);
  void search.refresh();
  void throughput.refresh();
  void queues.refresh();
  void schedules.refresh();
}

/**
 * @param {'retry' | 'cancel'} action
 * @param {string} id
 * @param {HTMLButtonElement} button
 */
async function runAction(action, id, button) {
  button.disabled = true;
  try {
    store.put(action === 'retry' ? (await request(RETRY_JOB, { id })).retryJob : (await request(CANCEL_JOB, { id })).cancelJob);
  } catch (error) {
    showRequestError(error);
  } finally {
    button.disabled = false;
  }
}

/** `#job=<id>&user=<id>`, so that a reload or a shared link opens the same view. */
function rememberInAddress() {
  const params = new URLSearchParams();
  if (view.selectedId) params.set('job', view.selectedId);
  if (view.userId) params.set('user', view.userId);
  history.replaceState(null, '', `${location.pathname}${location.search}#${params}`);
}

function restoreFromAddress() {
  const params = new URLSearchParams(location.hash.slice(1));
  const userId = params.get('user');
  if (userId) {
    input('#user-id').value = userId;
    void loadUser(userId);
  }
  const jobId = params.get('job');
  if (jobId) void openJob(jobId);
}

// One listener for every job item and button, since the lists are re-rendered on each change.
$('main').addEventListener('click', (event) => {
  if (!(event.target instanceof Element)) return;
  const holder = event.target.closest('[data-job-id]');
  const jobId = holder instanceof HTMLElement ? holder.dataset.jobId : undefined;
  if (!jobId) return;
  const button = event.target.closest('button[data-action]');
  const action = button instanceof HTMLButtonElement ? button.dataset.action : undefined;
  if (button instanceof HTMLButtonElement && (action === 'retry' || action === 'cancel')) void runAction(action, jobId, button);
  else void openJob(jobId);
});

$('#user-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const userId = input('#user-id').value.trim();
  if (userId) void loadUser(userId);
});

input('#api-key').value = readApiKey();
$('#api-key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  saveApiKey(input('#api-key').value);
  // The socket authenticated with the old key; only a new connection sends the new one.
  feed.reconnect();
  reloadOpenData();
});

store.onChange(scheduleRender);
feed.subscribe(ALL_JOBS_UPDATED, {}, (data) => store.recordUpdate(data.jobUpdated));
feed.subscribe(QUEUE_STATS_UPDATED, {}, (data) => {
  renderStats($('#stats'), data.queueStatsUpdated);
  throughput.onStats(data.queueStatsUpdated);
});
void loadRecentJobs();
void throughput.refresh();
void queues.refresh();
void schedules.refresh();
restoreFromAddress();
render();
