import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpRoute } from './route.js';

export const DASHBOARD_PATH = '/dashboard';

/** Ends with a separator, so that a prefix check cannot match a sibling such as dashboard-old/. */
const DASHBOARD_FOLDER = join(fileURLToPath(new URL('../../../dashboard/', import.meta.url)), sep);
// Resolved through each package (not a fixed node_modules path) so that hoisting does not matter.
const packageFolder = (name: string) => dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
/** Browser builds from node_modules, served under /dashboard/vendor/ (pinned in package.json). */
const VENDOR_FILES: Record<string, string> = {
  '/vendor/graphql-ws.js': join(packageFolder('graphql-ws'), 'umd/graphql-ws.min.js'),
  // uPlot draws the throughput chart: its IIFE build defines the global `uPlot` (dashboard/globals.d.ts).
  '/vendor/uplot.js': join(packageFolder('uplot'), 'dist/uPlot.iife.min.js'),
  '/vendor/uplot.css': join(packageFolder('uplot'), 'dist/uPlot.min.css'),
};

/** Only these kinds of file are served, so that nothing else that lands in the folder leaks out. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/**
 * Everything the page may load comes from this server: the policy turns an accidental CDN link into
 * a visible browser error instead of a silent dependency on the internet. `ws:`/`wss:` are listed
 * because older browsers do not count the same-origin WebSocket as 'self'.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "connect-src 'self' ws: wss:",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The dashboard's static files: GET /dashboard (or /dashboard/) is dashboard/index.html,
 * /dashboard/<file> a file under dashboard/, and /dashboard/vendor/<file> a browser build from
 * node_modules (graphql-ws, uPlot: VENDOR_FILES). There is no build step; the files are served as they are.
 */
export function dashboardRoute(): HttpRoute {
  return {
    async handle(request: IncomingMessage, response: ServerResponse) {
      // Every request passes here, GraphQL's too: only a URL that mentions the path is parsed.
      if (!request.url?.includes(DASHBOARD_PATH)) return false;
      const pathname = new URL(request.url, 'http://localhost').pathname;
      if (pathname !== DASHBOARD_PATH && !pathname.startsWith(`${DASHBOARD_PATH}/`)) return false;

      if (request.method !== 'GET' && request.method !== 'HEAD') {
        sendText(response, 405, 'Method Not Allowed', { allow: 'GET, HEAD' });
        return true;
      }
      const file = fileFor(pathname.slice(DASHBOARD_PATH.length));
      const contentType = file ? CONTENT_TYPES[extname(file)] : undefined;
      if (!file || !contentType) {
        sendText(response, 404, 'Not Found');
        return true;
      }
      await sendFile(request, response, file, contentType);
      return true;
    },
  };
}

/** The file a path below /dashboard names, or null when it would leave the dashboard folder. */
function fileFor(subpath: string): string | null {
  if (subpath === '' || subpath === '/') return join(DASHBOARD_FOLDER, 'index.html');
  const vendored = Object.hasOwn(VENDOR_FILES, subpath) ? VENDOR_FILES[subpath] : undefined;
  if (vendored) return vendored;
  let decoded: string;
  try {
    decoded = decodeURIComponent(subpath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  // Checked after decoding and resolving, so that neither `..` nor `%2e%2e%2f` can step outside.
  const file = resolve(DASHBOARD_FOLDER, `.${decoded}`);
  return file.startsWith(DASHBOARD_FOLDER) ? file : null;
}

async function sendFile(request: IncomingMessage, response: ServerResponse, file: string, contentType: string) {
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const missing = code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR';
    sendText(response, missing ? 404 : 500, missing ? 'Not Found' : 'Internal Server Error');
    return;
  }
  response.writeHead(200, {
    'content-type': contentType,
    'content-length': body.length,
    // The files change with the checkout, not with a build: always revalidate.
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'content-security-policy': CONTENT_SECURITY_POLICY,
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}

function sendText(response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  response.end(text);
}
