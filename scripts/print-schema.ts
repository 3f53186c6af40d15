// Writes schema.graphql from the Pothos schema; a test fails while the committed file differs.
import { writeFileSync } from 'node:fs';
import { printSchemaSdl } from '../src/graphql/schema.js';

writeFileSync(new URL('../schema.graphql', import.meta.url), printSchemaSdl());
console.log('schema.graphql written');
