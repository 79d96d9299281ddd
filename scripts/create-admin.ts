/** `npm run create-admin -- --email … --password … [--name …]`: see src/create-admin.ts. */
import { runCreateAdmin } from '../src/create-admin.js';

process.exitCode = await runCreateAdmin(process.argv.slice(2));
