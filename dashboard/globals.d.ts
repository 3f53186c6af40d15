// The browser builds served at /dashboard/vendor/ and loaded by index.html before the modules define
// these globals: graphql-ws's UMD build and uPlot's IIFE build.
import type * as GraphQLWs from 'graphql-ws';
import type UPlot from 'uplot';

declare global {
  const graphqlWs: typeof GraphQLWs;
  const uPlot: typeof UPlot;
}
