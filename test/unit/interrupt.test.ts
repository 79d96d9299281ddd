import { afterEach, describe, expect, it, vi } from 'vitest';
import { onInterrupt } from '../../src/lib/interrupt.js';

describe('onInterrupt (Ctrl-C taken once)', () => {
  let off: (() => void) | undefined;
  afterEach(() => {
    off?.();
    vi.useRealTimers();
  });

  it('starts the shutdown on the first SIGINT, takes those within the window as the same one, exits on a later one', () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const close = vi.fn();
    const forceExit = vi.fn();
    off = onInterrupt(close, forceExit, { sameWithinMs: 1000 });

    process.emit('SIGINT', 'SIGINT');
    expect(close).toHaveBeenCalledTimes(1);
    vi.setSystemTime(999); // relayed by npm and tsx
    process.emit('SIGINT', 'SIGINT');
    expect(close).toHaveBeenCalledTimes(1);
    expect(forceExit).not.toHaveBeenCalled();

    vi.setSystemTime(1000); // pressed again
    process.emit('SIGINT', 'SIGINT');
    expect(close).toHaveBeenCalledTimes(1);
    expect(forceExit).toHaveBeenCalledTimes(1);
  });

  it('a Ctrl-C while a shutdown begun otherwise (SIGTERM) is under way exits at once', () => {
    const close = vi.fn();
    const forceExit = vi.fn();
    off = onInterrupt(close, forceExit, { closing: () => true });
    process.emit('SIGINT', 'SIGINT');
    expect(close).not.toHaveBeenCalled();
    expect(forceExit).toHaveBeenCalledTimes(1);
  });
});
