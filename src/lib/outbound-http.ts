import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';

/**
 * The one client for requests to other systems (webhooks). It never follows redirects, gives up after
 * `timeoutMs` for the whole exchange, reads at most `maxBodyBytes` of the answer, and — unless private
 * networks are allowed — refuses to connect to loopback, private, link-local, multicast, unspecified or
 * reserved addresses. The check runs on the address the socket actually connects to (after DNS), so a name
 * that resolves to a public address when a webhook is created and to 127.0.0.1 later (DNS rebinding) is refused too.
 */
export interface OutboundOptions {
  allowPrivateNetworks: boolean;
  timeoutMs: number;
  maxBodyBytes?: number;
  /** DNS lookup used for connections (tests pass one; default dns.lookup). */
  lookup?: net.LookupFunction;
}

export interface OutboundResponse {
  status: number;
  /** The first maxBodyBytes of the body, as text. */
  body: string;
}

export class OutboundError extends Error {
  constructor(
    message: string,
    public readonly kind: 'blocked' | 'timeout' | 'network',
  ) {
    super(message);
    this.name = 'OutboundError';
  }
}

/** Ranges ipaddr.js calls anything but 'unicast' are not public: loopback, private, linkLocal, multicast, … */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed.range() === 'unicast';
}

/**
 * Checks a target before it is stored: a literal address must be public; a name must not resolve to a
 * non-public address (a name that does not resolve now is accepted: delivery checks again at connect time).
 * Returns a reason when refused.
 */
export async function refuseTarget(
  url: URL,
  opts: Pick<OutboundOptions, 'allowPrivateNetworks' | 'lookup'>,
): Promise<string | null> {
  if (opts.allowPrivateNetworks) return null;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (net.isIP(host)) return isPublicAddress(host) ? null : `${host} is not a public address`;
  if (/^(localhost|.*\.localhost|.*\.local|.*\.internal)$/i.test(host)) return `${host} is a local name`;
  const lookup = opts.lookup ?? dns.lookup;
  const addresses = await new Promise<dns.LookupAddress[]>((resolve) => {
    const timer = setTimeout(() => resolve([]), 2000);
    lookup(host, { all: true }, (err, result) => {
      clearTimeout(timer);
      resolve(err ? [] : (result as unknown as dns.LookupAddress[]));
    });
  });
  const bad = addresses.find((a) => !isPublicAddress(a.address));
  return bad ? `${host} resolves to ${bad.address}, which is not a public address` : null;
}

export function createOutboundClient(opts: OutboundOptions) {
  const filter = { allowPrivateIPAddress: opts.allowPrivateNetworks, allowMetaIPAddress: false };
  const agents = {
    'http:': new RequestFilteringHttpAgent({ ...filter, keepAlive: true, maxSockets: 64 }),
    'https:': new RequestFilteringHttpsAgent({ ...filter, keepAlive: true, maxSockets: 64 }),
  } as const;
  const maxBody = opts.maxBodyBytes ?? 1024;

  return {
    /** POSTs `body` to `url`; resolves with the status and the first bytes of the answer, whatever the status. */
    post(url: URL, body: string, headers: Record<string, string>): Promise<OutboundResponse> {
      const protocol = url.protocol as 'http:' | 'https:';
      const mod = protocol === 'https:' ? https : http;
      return new Promise<OutboundResponse>((resolve, reject) => {
        let settled = false;
        const done = (fn: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          fn();
        };
        const req = mod.request(
          url,
          {
            method: 'POST',
            agent: agents[protocol],
            headers: { ...headers, 'content-length': Buffer.byteLength(body) },
            ...(opts.lookup ? { lookup: opts.lookup } : {}),
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            const finish = () =>
              done(() =>
                resolve({
                  status: res.statusCode ?? 0,
                  body: Buffer.concat(chunks).subarray(0, maxBody).toString('utf8'),
                }),
              );
            res.on('data', (chunk: Buffer) => {
              if (size < maxBody) chunks.push(chunk);
              size += chunk.length;
              // Enough read: the rest of the answer is not ours to buffer.
              if (size >= maxBody) {
                finish();
                res.destroy();
              }
            });
            res.on('end', finish);
            res.on('error', (err) => done(() => reject(new OutboundError(err.message, 'network'))));
          },
        );
        const timer = setTimeout(() => {
          done(() => reject(new OutboundError(`no answer within ${opts.timeoutMs} ms`, 'timeout')));
          req.destroy();
        }, opts.timeoutMs);
        req.on('error', (err) => {
          const blocked = /is not allowed/.test(err.message);
          done(() =>
            reject(
              new OutboundError(
                blocked ? `refused: ${err.message.replace(/^DNS lookup /, '')}` : err.message,
                blocked ? 'blocked' : 'network',
              ),
            ),
          );
        });
        req.end(body);
      });
    },
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}

export type OutboundClient = ReturnType<typeof createOutboundClient>;
