// Writes schema.graphql: the API `npm start` serves (the demo job types' typed submits included); a test
// fails while the committed file differs. A team prints its own with `conveyor schema`.
import { writeFileSync } from 'node:fs';
import { demoJobTypes } from '../examples/demoJobTypes.js';
import { buildSchema, printSchemaSdl } from '../src/graphql/schema.js';

writeFileSync(new URL('../schema.graphql', import.meta.url), printSchemaSdl(buildSchema(demoJobTypes)));
console.log('schema.graphql written');
