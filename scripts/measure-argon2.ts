/**
 * Measures the cost of one argon2id hash and one verify with the application's parameters on this
 * machine (the login cost): `npx tsx scripts/measure-argon2.ts [iterations]`.
 */
import argon2 from 'argon2';
import { ARGON2_PARAMS } from '../src/modules/auth/password.js';

const iterations = Number(process.argv[2] ?? 20);
const password = 'correct horse battery staple';

async function time(label: string, fn: () => Promise<unknown>) {
  await fn(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)]!;
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  console.log(
    `${label}: median ${median.toFixed(1)} ms, mean ${mean.toFixed(1)} ms, min ${samples[0]!.toFixed(1)} ms (n=${iterations})`,
  );
}

const { type: _type, ...shown } = ARGON2_PARAMS;
console.log('argon2id parameters:', shown);
const hash = await argon2.hash(password, ARGON2_PARAMS);
await time('hash', () => argon2.hash(password, ARGON2_PARAMS));
await time('verify', () => argon2.verify(hash, password));
