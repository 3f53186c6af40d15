import { createGraphQLError, isAsyncIterable, type Plugin } from 'graphql-yoga';

/** What a POST body may be. A page on another site can send form-urlencoded, multipart or text/plain without
 * asking (no CORS preflight); JSON needs the preflight, which CORS_ORIGINS decides. */
const REQUEST_MEDIA_TYPES = ['application/json', 'application/graphql-response+json'];

/**
 * GraphQL's media types, answered with GraphQL errors: a POST body must be JSON (else 415,
 * UNSUPPORTED_MEDIA_TYPE, before anything runs), and a request whose Accept no result format meets
 * gets 406, NOT_ACCEPTABLE. Yoga answered both with an empty body, executed form-urlencoded and
 * multipart POSTs, and left the subscription of a 406 running with nobody to read it.
 */
export function useGraphQLMediaTypes(): Plugin {
  return {
    onRequestParse({ request, setRequestParser, endResponse, fetchAPI }) {
      if (request.method !== 'POST') return; // GET: queries (mutations are refused) and SSE
      const [mediaType, ...parameters] = (request.headers.get('content-type') ?? '').split(';').map((part) => part.trim().toLowerCase());
      if (!REQUEST_MEDIA_TYPES.includes(mediaType!) || !parameters.every((parameter) => parameter === 'charset=utf-8')) {
        const message = `Send the request body as ${REQUEST_MEDIA_TYPES.join(' or ')} (UTF-8); this server does not take ${mediaType || 'a body without a Content-Type'}.`;
        endResponse(errorResponse(fetchAPI, 415, 'UNSUPPORTED_MEDIA_TYPE', message));
        return;
      }
      setRequestParser(parseJsonBody);
    },
    onResultProcess(payload) {
      const { result, resultProcessor, acceptableMediaTypes } = payload;
      if (resultProcessor) return;
      payload.setResultProcessor((_result, fetchAPI) => {
        if (isAsyncIterable(result)) void (result as AsyncGenerator).return?.(undefined);
        const offered = [...new Set(acceptableMediaTypes)].join(', ');
        return errorResponse(
          fetchAPI,
          406,
          'NOT_ACCEPTABLE',
          `No answer format matches the Accept header; this operation can be answered as ${offered}.`,
        );
      }, 'application/json');
    },
  };
}

function errorResponse(fetchAPI: { Response: typeof Response }, status: number, code: string, message: string): Response {
  return new fetchAPI.Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
}

/** The JSON body as GraphQL parameters; BAD_REQUEST (400) for JSON that is not an object. */
async function parseJsonBody(request: Request) {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    throw badRequest('POST body sent invalid JSON.');
  }
  if (body === null || typeof body !== 'object')
    throw badRequest(`POST body is expected to be an object but received ${body === null ? 'null' : typeof body}.`);
  return body as Record<string, unknown>;
}

function badRequest(message: string) {
  return createGraphQLError(message, { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } });
}
