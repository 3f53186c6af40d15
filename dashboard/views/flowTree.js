// @ts-check
import { h, shortId } from '../dom.js';
import { statusBadge } from './jobStatus.js';

/** @import { FlowState } from '../types.js' */

/**
 * The open job's flow as an indented tree, the root first and each parent above its children, each
 * node with its type, status (coloured as everywhere) and id; the open job is marked. Clicking a node
 * opens that job.
 * @param {FlowState} flow
 * @param {string} openId
 */
export function flowTree(flow, openId) {
  /** @type {Map<string, string[]>} */
  const children = new Map();
  for (const edge of flow.edges) children.set(edge.parentId, [...(children.get(edge.parentId) ?? []), edge.childId]);
  /** @type {HTMLElement[]} */
  const rows = [];
  const visit = (/** @type {string} */ id, /** @type {number} */ depth) => {
    const job = flow.jobs.get(id);
    if (!job) return;
    const row = h(
      'li',
      {
        className: `flow-node${id === openId ? ' flow-open' : ''}`,
        dataset: { jobId: id, depth: String(depth), open: id === openId ? 'true' : 'false' },
      },
      h('strong', {}, job.type),
      ' ',
      statusBadge(job),
      job.dependenciesPending > 0 ? h('span', { className: 'muted' }, ` · ${job.dependenciesPending} pending`) : null,
      ' ',
      h('code', { className: 'muted' }, shortId(id)),
    );
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    row.style.paddingLeft = `${depth * 1.25}rem`;
    rows.push(row);
    for (const child of children.get(id) ?? []) visit(child, depth + 1);
  };
  visit(flow.rootId, 0);
  return h('ol', { className: 'flow-tree', dataset: { rootId: flow.rootId } }, rows);
}
