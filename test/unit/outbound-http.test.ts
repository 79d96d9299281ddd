import type { LookupFunction } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createOutboundClient,
  isPublicAddress,
  OutboundError,
  refuseTarget,
} from '../../src/lib/outbound-http.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

/** A DNS answer we control: every name resolves to `address`. */
const resolvesTo =
  (address: string): LookupFunction =>
  (_host, options, cb) => {
    const family = address.includes(':') ? 6 : 4;
    if ((options as { all?: boolean }).all)
      (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else (cb as (e: null, a: string, f: number) => void)(null, address, family);
  };

describe('outbound HTTP: the SSRF guard', () => {
  it.each([
    ['127.0.0.1', false],
    ['10.1.2.3', false],
    ['172.16.0.1', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false], // cloud metadata
    ['100.64.0.1', false], // carrier-grade NAT
    ['0.0.0.0', false],
    ['224.0.0.1', false],
    ['255.255.255.255', false],
    ['::1', false],
    ['fe80::1', false],
    ['fc00::1', false],
    ['ff02::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['93.184.215.14', true],
    ['2606:4700::1111', true],
    ['not-an-ip', false],
  ])('%s is public: %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });

  it('refuses literal private targets and names resolving to them when saving; private networks can be allowed', async () => {
    const opts = { allowPrivateNetworks: false };
    expect(await refuseTarget(new URL('http://127.0.0.1:8080/x'), opts)).toMatch(/not a public address/);
    expect(await refuseTarget(new URL('http://[::1]/x'), opts)).toMatch(/not a public address/);
    expect(await refuseTarget(new URL('http://localhost:9/x'), opts)).toMatch(/local name/);
    expect(
      await refuseTarget(new URL('http://internal.example/x'), { ...opts, lookup: resolvesTo('10.0.0.7') }),
    ).toMatch(/resolves to 10\.0\.0\.7/);
    expect(
      await refuseTarget(new URL('https://hooks.example/x'), {
        ...opts,
        lookup: resolvesTo('93.184.215.14'),
      }),
    ).toBeNull();
    expect(await refuseTarget(new URL('http://127.0.0.1/x'), { allowPrivateNetworks: true })).toBeNull();
  });
});

describe('outbound HTTP: the client', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let other: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    other = await startReceiver();
    receiver = await startReceiver((req) => {
      const path = JSON.parse(req.body).path as string;
      if (path === 'redirect') return { status: 302, headers: { location: other.url } };
      if (path === 'hang') return 'hang';
      if (path === 'big') return { status: 500, body: 'x'.repeat(5000) };
      return 204;
    });
  });
  afterAll(async () => {
    await receiver.close();
    await other.close();
  });

  const post = (client: ReturnType<typeof createOutboundClient>, path: string, url = receiver.url) =>
    client.post(new URL(url), JSON.stringify({ path }), { 'content-type': 'application/json' });

  it('a name that resolved publicly when saved but points at 127.0.0.1 now is refused at connect time (DNS rebinding)', async () => {
    const host = `rebind.example:${receiver.port}`;
    expect(
      await refuseTarget(new URL(`http://${host}/hook`), {
        allowPrivateNetworks: false,
        lookup: resolvesTo('93.184.215.14'),
      }),
    ).toBeNull();
    const client = createOutboundClient({
      allowPrivateNetworks: false,
      timeoutMs: 2000,
      lookup: resolvesTo('127.0.0.1'),
    });
    const before = receiver.received.length;
    const err = await post(client, 'ok', `http://${host}/hook`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutboundError);
    expect((err as OutboundError).kind).toBe('blocked');
    expect(receiver.received.length).toBe(before);
    client.close();
  });

  it('a literal loopback target is refused at connect time too', async () => {
    const client = createOutboundClient({ allowPrivateNetworks: false, timeoutMs: 2000 });
    const err = await post(client, 'ok').catch((e: unknown) => e);
    expect((err as OutboundError).kind).toBe('blocked');
    client.close();
  });

  it('does not follow redirects, times out, and reads at most 1 KB of the answer', async () => {
    const client = createOutboundClient({ allowPrivateNetworks: true, timeoutMs: 300 });
    expect((await post(client, 'ok')).status).toBe(204);

    const redirected = await post(client, 'redirect');
    expect(redirected.status).toBe(302);
    expect(other.received).toHaveLength(0);

    const big = await post(client, 'big');
    expect(big.status).toBe(500);
    expect(big.body).toHaveLength(1024);

    const t0 = Date.now();
    const err = await post(client, 'hang').catch((e: unknown) => e);
    expect((err as OutboundError).kind).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(5000);
    client.close();
  });
});
