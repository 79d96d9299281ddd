import { describe, expect, it } from 'vitest';
import { SERVER_V8_FLAGS, serverV8Flags } from '../../src/lib/v8-tuning.js';

describe('serverV8Flags (the V8 settings a server process sets as it starts)', () => {
  it('sets every one when node was given none of them', () => {
    expect(serverV8Flags([])).toEqual([...SERVER_V8_FLAGS]);
    expect(serverV8Flags(['--enable-source-maps', '--import', 'tsx'])).toEqual([...SERVER_V8_FLAGS]);
    expect(SERVER_V8_FLAGS).toEqual(['--heap-growing-percent=50', '--no-allocation-site-pretenuring']);
  });

  it("leaves each to node's own option, in either spelling and with or without no-", () => {
    expect(serverV8Flags(['--heap-growing-percent=100'])).toEqual(['--no-allocation-site-pretenuring']);
    expect(serverV8Flags(['--heap_growing_percent=100'])).toEqual(['--no-allocation-site-pretenuring']);
    expect(serverV8Flags(['--allocation-site-pretenuring'])).toEqual(['--heap-growing-percent=50']);
    expect(serverV8Flags(['--no-allocation_site_pretenuring', '--heap-growing-percent=20'])).toEqual([]);
  });
});
