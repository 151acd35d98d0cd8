/**
 * Preloaded into the gateway by bench/gateway-memory.ts (`node --expose-gc --import …/gc-on-signal.js
 * dist/src/cli.js`), so that src/ needs no hook: on SIGUSR2 the process runs full garbage
 * collections and then logs one JSON line with process.memoryUsage(), which tells memory that is
 * held apart from garbage that V8 has simply not collected yet.
 */
const gc = (globalThis as { gc?: () => void }).gc;
if (typeof gc !== 'function') throw new Error('gc-on-signal: start node with --expose-gc');

process.on('SIGUSR2', () => {
  gc();
  // A second pass: the first may only have made more objects unreachable (weak callbacks).
  setImmediate(() => {
    gc();
    // ArrayBuffer backing stores are freed by a task after the collection.
    setTimeout(() => {
      const m = process.memoryUsage();
      process.stderr.write(
        JSON.stringify({
          level: 'info',
          msg: 'bench gc',
          rss: m.rss,
          heapTotal: m.heapTotal,
          heapUsed: m.heapUsed,
          external: m.external,
          arrayBuffers: m.arrayBuffers,
        }) + '\n',
      );
    }, 200);
  });
});
