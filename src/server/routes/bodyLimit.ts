import type { HttpRoute } from './route.js';

/**
 * Refuses request bodies over `limitBytes` before anything reads them: 413 when Content-Length says
 * so, 411 for a body without Content-Length (chunked), whose size is only known once read.
 */
export function bodyLimitRoute(limitBytes: number): HttpRoute {
  return {
    handle(request, response) {
      const length = request.headers['content-length'];
      const chunked = request.headers['transfer-encoding'] !== undefined;
      let status: number | null = null;
      let message = '';
      if (length !== undefined && Number(length) > limitBytes) {
        status = 413;
        message = `The request body is ${length} bytes; the limit is ${limitBytes}.`;
      } else if (length === undefined && chunked) {
        status = 411;
        message = 'Send the request body with a Content-Length header.';
      }
      if (status === null) return false;
      response.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
      response.end(JSON.stringify({ errors: [{ message, extensions: { code: 'BAD_USER_INPUT' } }] }));
      request.resume();
      return true;
    },
  };
}
