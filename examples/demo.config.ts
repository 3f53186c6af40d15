// The configuration `npm start` runs: the demo job types. A project of your own has a
// conveyor.config.ts like this one beside its package.json (see the README, "Use it in your project"),
// importing from 'conveyor'.
import { defineConfig } from '../src/index.js';
import { demoJobTypes } from './demoJobTypes.js';

export default defineConfig({ jobTypes: demoJobTypes });
