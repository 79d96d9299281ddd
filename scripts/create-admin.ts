/** `npm run create-admin -- --email … --password … [--name …]`: see src/modules/users/create-admin-cli.ts. */
import { runCreateAdmin } from '../src/modules/users/create-admin-cli.js';

process.exitCode = await runCreateAdmin(process.argv.slice(2));
