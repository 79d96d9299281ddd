import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { freePort } from '../../scripts/lib/free-port.js';

export interface ReceivedMail {
  envelope: { from: string; to: string[] };
  raw: string;
  parsed: ParsedMail;
}

/**
 * A real SMTP server on 127.0.0.1 for tests (smtp-server), keeping every accepted message parsed with
 * mailparser. It can be stopped and started again on the same port (the SMTP server "down"), and told to
 * refuse recipients with a permanent 550.
 */
export class TestSmtpServer {
  readonly received: ReceivedMail[] = [];
  /** Recipient addresses answered with "550 5.1.1 mailbox unavailable". */
  readonly refuse = new Set<string>();
  private server: SMTPServer | null = null;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly port: number,
    private readonly auth: { user: string; pass: string } | null,
  ) {}

  static async start(opts: { auth?: { user: string; pass: string } } = {}): Promise<TestSmtpServer> {
    const s = new TestSmtpServer(await freePort(), opts.auth ?? null);
    await s.up();
    return s;
  }

  /** smtp://… URL for SMTP_URL, with credentials when the server wants them. */
  get url(): string {
    const cred = this.auth
      ? `${encodeURIComponent(this.auth.user)}:${encodeURIComponent(this.auth.pass)}@`
      : '';
    return `smtp://${cred}127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const options: SMTPServerOptions = {
      disabledCommands: this.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      authOptional: !this.auth,
      allowInsecureAuth: true,
      logger: false,
      onAuth: (auth, _session, cb) => {
        if (this.auth && auth.username === this.auth.user && auth.password === this.auth.pass)
          cb(null, { user: auth.username });
        else cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      },
      onRcptTo: (address, _session, cb) => {
        if (this.refuse.has(address.address.toLowerCase()))
          cb(Object.assign(new Error('5.1.1 Mailbox unavailable'), { responseCode: 550 }));
        else cb();
      },
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', async () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const parsed = await simpleParser(raw);
          this.received.push({
            envelope: {
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
            },
            raw,
            parsed,
          });
          for (const w of this.waiters.splice(0)) w();
          cb();
        });
      },
    };
    this.server = new SMTPServer(options);
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  /** Stops listening (connections are refused) until up() is called again. */
  async down(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async close(): Promise<void> {
    await this.down();
  }

  /** Messages to this address so far. */
  to(address: string): ReceivedMail[] {
    const a = address.toLowerCase();
    return this.received.filter((m) => m.envelope.to.some((t) => t.toLowerCase() === a));
  }

  /** Waits (bounded) until a received message matches; returns it. */
  async waitFor(match: (m: ReceivedMail) => boolean, timeoutMs = 20_000): Promise<ReceivedMail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a mail');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}
