// @ts-check
// Queries and mutations as GraphQL over HTTP (POST /graphql).

import { authorizationFor } from './apiKey.js';

/** @import { Operation } from './types.js' */

/** A request that came back with GraphQL errors (or none of the data it asked for). */
export class GraphQLRequestError extends Error {
  /**
   * @param {string[]} messages
   * @param {string[]} [codes] the errors' `extensions.code`s (FORBIDDEN, BAD_USER_INPUT …), where given
   */
  constructor(messages, codes = []) {
    super(messages.join('\n'));
    this.name = 'GraphQLRequestError';
    this.messages = messages;
    this.codes = codes;
  }
}

/**
 * Returns `request(query, variables)`, resolving with `data` or rejecting with GraphQLRequestError.
 * @param {{ endpoint: string, getApiKey: () => string }} options
 */
export function createGraphQLHttpClient({ endpoint, getApiKey }) {
  /**
   * @template Result
   * @template {Record<string, unknown>} Variables
   * @param {Operation<Result, Variables>} query
   * @param {Variables} variables
   * @returns {Promise<Result>}
   */
  return async function request(query, variables) {
    /** @type {Record<string, string>} */
    const headers = {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
    };
    const authorization = authorizationFor(getApiKey());
    if (authorization) headers.authorization = authorization;

    let response;
    try {
      response = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    } catch (error) {
      throw new GraphQLRequestError([`Cannot reach the server: ${error instanceof Error ? error.message : String(error)}`]);
    }
    /** @type {{ data?: Result | null, errors?: { message: string, extensions?: { code?: unknown } }[] }} */
    let body;
    try {
      /** @type {unknown} */
      const parsed = await response.json();
      body = /** @type {typeof body} */ (parsed);
    } catch {
      throw new GraphQLRequestError([`HTTP ${response.status} ${response.statusText}`.trim()]);
    }
    if (Array.isArray(body.errors) && body.errors.length > 0) {
      const codes = body.errors.map((error) => error.extensions?.code).filter((code) => typeof code === 'string');
      throw new GraphQLRequestError(
        body.errors.map((error) => error.message),
        codes,
      );
    }
    if (!response.ok || !body.data) throw new GraphQLRequestError([`HTTP ${response.status} ${response.statusText}`.trim()]);
    return body.data;
  };
}
