// The UMD build of graphql-ws, served at /dashboard/vendor/graphql-ws.js and loaded by index.html
// before the modules, defines this global.
import type * as GraphQLWs from 'graphql-ws';

declare global {
  const graphqlWs: typeof GraphQLWs;
}
