#!/usr/bin/env node
import { processIo } from './io.ts';
// Entry point of the `outpost` command (development: `npm run outpost -- ARGS`).
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2), processIo());
