// @ts-check
import { FLOW, FLOW_UPDATED } from './operations.js';

/** @import { FlowJob, FlowState } from './types.js' */
/** @import { LiveFeed } from './liveFeed.js' */
/** @import { createGraphQLHttpClient } from './graphqlHttp.js' */

/**
 * The flow of the open job: its jobs and parent-child edges, read once, then kept current by
 * flowUpdated(rootId) (which starts with the flow as it is, so nothing between the two is lost).
 */
export class FlowView {
  /** @type {FlowState | null} */
  state = null;
  #stop = () => {};
  #request;
  #feed;
  #onChange;
  #showError;

  /**
   * @param {{
   *   request: ReturnType<typeof createGraphQLHttpClient>,
   *   feed: Pick<LiveFeed, 'subscribe'>,
   *   onChange: () => void,
   *   showError: (error: unknown) => void,
   * }} deps
   */
  constructor({ request, feed, onChange, showError }) {
    this.#request = request;
    this.#feed = feed;
    this.#onChange = onChange;
    this.#showError = showError;
  }

  /** Follows the flow rooted at `rootId` (nothing to do when it is the one followed already). */
  async open(/** @type {string} */ rootId) {
    if (this.state?.rootId === rootId) return;
    this.close();
    /** @type {FlowState} */
    const state = { rootId, jobs: new Map(), edges: [] };
    this.state = state;
    this.#stop = this.#feed.subscribe(FLOW_UPDATED, { rootId }, (data) => this.#put(state, data.flowUpdated));
    try {
      const { flow } = await this.#request(FLOW, { rootId });
      if (!flow || this.state !== state) return;
      for (const job of flow.jobs) this.#put(state, job);
      state.edges = flow.edges;
      this.#onChange();
    } catch (error) {
      this.#showError(error);
    }
  }

  close() {
    this.#stop();
    this.#stop = () => {};
    this.state = null;
  }

  /**
   * @param {FlowState} state
   * @param {FlowJob} job
   */
  #put(state, job) {
    const known = state.jobs.get(job.id);
    if (known && known.version >= job.version) return;
    state.jobs.set(job.id, job);
    if (this.state === state) this.#onChange();
  }
}
