/**
 * Writes schema/portcullis.schema.json from the zod schema in src/core/config-schema.ts (the one
 * source of truth). Run after changing the schema:
 *   node_modules/.bin/deno run --allow-write scripts/gen-schema.ts   (or: npm run gen:schema)
 * test/unit/config-commands.test.ts fails while the committed file is stale.
 */
import { schemaCommand } from '../src/cli/config-commands.ts';

const target = new URL('../schema/portcullis.schema.json', import.meta.url);
await Deno.writeTextFile(target, schemaCommand());
console.log(`wrote ${target.pathname}`);
