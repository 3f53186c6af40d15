import { NoSchemaIntrospectionCustomRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Refuses introspection (GRAPHQL_INTROSPECTION=false) wherever a document is validated: HTTP, SSE and
 * graphql-ws, which validates through the same envelop.
 *
 * @graphql-yoga/plugin-disable-introspection decided per fetch Request in its onRequestParse hook, a
 * hook that only HTTP requests pass through; a graphql-ws operation has no Request, so the rule was
 * never added there and introspection answered any key.
 */
export function useNoIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}
