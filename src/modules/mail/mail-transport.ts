import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NodemailerError, Transporter } from 'nodemailer';

/** nodemailer is loaded with the first message sent: an API process that never sends mail never loads it. */
function lazyTransporter(options: Parameters<typeof import('nodemailer').createTransport>[0]) {
  let transporter: Promise<Transporter> | undefined;
  return {
    get(): Promise<Transporter> {
      transporter ??= import('nodemailer').then((m) => m.default.createTransport(options));
      return transporter;
    },
    /** Closes the transporter if one was ever made. */
    close(): void {
      void transporter?.then((t) => t.close());
    },
  };
}

export interface MailAddress {
  name: string;
  address: string;
}

/** One fully rendered message. User text stays in these fields; nodemailer encodes it into headers/parts. */
export interface OutgoingMail {
  /** `<…@domain>`, deterministic: the key of the delivery record. */
  messageId: string;
  from: MailAddress;
  to: MailAddress;
  replyTo?: string;
  subject: string;
  text: string;
  html: string;
  inReplyTo?: string;
  references?: string[];
  /** Extra headers (Auto-Submitted, X-Auto-Response-Suppress, …): fixed names, values built by us. */
  headers?: Record<string, string>;
}

export interface MailTransport {
  readonly kind: 'smtp' | 'file';
  /** Hands the message over; resolves with the server's answer (or the .eml path) once it is accepted. */
  send(mail: OutgoingMail): Promise<{ response: string }>;
  close(): void;
}

/** The SMTP server refused the message for good (5xx, not 503): retrying the same message cannot help. */
export class PermanentMailError extends Error {
  constructor(
    message: string,
    public readonly responseCode: number | undefined,
  ) {
    super(message);
    this.name = 'PermanentMailError';
  }
}

export interface MailLog {
  info(obj: object, msg: string): void;
}

function composeOptions(mail: OutgoingMail) {
  return {
    messageId: mail.messageId,
    from: mail.from,
    to: mail.to,
    ...(mail.replyTo ? { replyTo: mail.replyTo } : {}),
    subject: mail.subject,
    text: mail.text,
    html: mail.html,
    ...(mail.inReplyTo ? { inReplyTo: mail.inReplyTo } : {}),
    ...(mail.references?.length ? { references: mail.references } : {}),
    headers: mail.headers ?? {},
    // Our text never needs it, and a hostile value must not be able to switch it on.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

/**
 * SMTP through nodemailer: `smtp://user:pass@host:587` (STARTTLS whenever the server offers it; add
 * `?requireTLS=true` to insist) or `smtps://…:465` (TLS from the first byte). One connection per message,
 * bounded waits, so a dead server turns into a quick error the job runner retries.
 */
export function createSmtpTransport(smtpUrl: string, log: MailLog): MailTransport {
  const transporter = lazyTransporter({
    url: smtpUrl,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    kind: 'smtp',
    async send(mail) {
      try {
        const info = await (await transporter.get()).sendMail(composeOptions(mail));
        log.info({ messageId: mail.messageId, to: mail.to.address }, 'mail sent');
        return { response: String(info.response ?? 'accepted') };
      } catch (err) {
        const e = err as NodemailerError;
        // A 5xx (except 503) answer to this message is final: mailbox unknown, message refused, relay
        // denied. Failed authentication, TLS or connection problems are the server's or our configuration's
        // and are retried: once fixed, the queued mail goes out.
        const aboutTheMessage = e.code === 'EENVELOPE' || e.code === 'EMESSAGE';
        if (aboutTheMessage && (e.permanent === true || e.responseCode === undefined)) {
          throw new PermanentMailError(
            `SMTP server refused the message: ${e.response ?? e.message}`,
            e.responseCode,
          );
        }
        throw err;
      }
    },
    close: () => transporter.close(),
  };
}

/** A file name from a Message-ID: the same message always lands in the same file (retries overwrite). */
export function emlFileName(messageId: string): string {
  return `${messageId.replace(/^<|>$/g, '').replace(/[^A-Za-z0-9._-]/g, '_')}.eml`;
}

/**
 * Without SMTP_URL: each message is written as an RFC 5322 `.eml` file under `dir` (DATA_DIR/mail) and
 * logged with its subject and recipient (never the body: it may hold a reset link). Open the files with
 * any mail client.
 */
export function createFileTransport(dir: string, log: MailLog): MailTransport {
  // nodemailer's MailComposer builds the same message its stream transport would, without the transport's
  // plugin pass and stream plumbing around it: about a quarter less CPU per message. Loaded with the first one.
  let composer: Promise<typeof import('nodemailer/lib/mail-composer').default> | undefined;
  const compose = async (mail: OutgoingMail): Promise<Buffer> => {
    composer ??= import('nodemailer/lib/mail-composer').then((m) => m.default);
    const Composer = await composer;
    const message = await new Composer(composeOptions(mail)).compile().build();
    // Unix line ends, as before (nodemailer's `newline: 'unix'`). latin1 maps each byte to one character and
    // back, so no byte of the message changes but the line ends.
    return Buffer.from(message.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
  };
  // The directory is made once, not per message; if it disappears later, the write fails and makes it again.
  let made: Promise<unknown> | null = null;
  const ensureDir = () => {
    made ??= mkdir(dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      made = null;
      throw err;
    });
    return made;
  };
  return {
    kind: 'file',
    async send(mail) {
      const message = await compose(mail);
      await ensureDir();
      const file = path.join(dir, emlFileName(mail.messageId));
      const tmp = `${file}.tmp`;
      try {
        await writeFile(tmp, message, { mode: 0o600 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        made = null;
        await ensureDir();
        await writeFile(tmp, message, { mode: 0o600 });
      }
      await rename(tmp, file);
      log.info(
        { to: mail.to.address, subject: mail.subject, file },
        'mail written to file (SMTP_URL not set)',
      );
      return { response: `written to ${file}` };
    },
    close: () => {},
  };
}

export function createMailTransport(
  opts: { smtpUrl: string | undefined; dataDir: string },
  log: MailLog,
): MailTransport {
  return opts.smtpUrl
    ? createSmtpTransport(opts.smtpUrl, log)
    : createFileTransport(path.join(opts.dataDir, 'mail'), log);
}
