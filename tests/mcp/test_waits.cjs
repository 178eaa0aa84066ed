// Waiting lock_file calls, over stdio and over HTTP: progress notifications arrive while
// a call waits; a cancelled wait is withdrawn at once and leaves no grant behind.
'use strict';
const path = require('node:path');
const { check, main, sleep, stdioClient, startHttpServer, httpClient, call, work } = require('./lib.cjs');

async function progress(label, holder, waiter) {
  const file = path.join(work, `${label}-progress.txt`);
  const held = (await call(holder, 'lock_file', { path: file, ttl_seconds: 60 })).structuredContent;
  const notes = [];
  setTimeout(() => call(holder, 'unlock_file', { path: file, lock_id: held.lock_id }), 1600);
  const started = Date.now();
  const got = (await call(waiter, 'lock_file', { path: file, ttl_seconds: 10, wait_seconds: 20 },
    { onprogress: (note) => notes.push(note) })).structuredContent;
  const waited = Date.now() - started;
  check(`${label}: the waiter gets the lock once released`, got.acquired === true && waited >= 1400 && waited < 10000,
    { got, waited });
  check(`${label}: progress notifications arrived during the wait`, notes.length >= 2, notes);
  check(`${label}: progress grows`, notes.every((n, i) => i === 0 || n.progress > notes[i - 1].progress));
  check(`${label}: progress names the holder`, notes.length > 0 && /held by/.test(notes[0].message || ''), notes[0]);
  check(`${label}: progress total is the wait`, notes.length > 0 && notes[0].total === 20, notes[0]);
  await call(waiter, 'unlock_file', { path: file, lock_id: got.lock_id });
}

async function cancel(label, holder, waiter) {
  const file = path.join(work, `${label}-cancel.txt`);
  const held = (await call(holder, 'lock_file', { path: file, ttl_seconds: 60 })).structuredContent;
  const abort = new AbortController();
  const pending = call(waiter, 'lock_file', { path: file, ttl_seconds: 60, wait_seconds: 30 }, { signal: abort.signal })
    .then(() => 'answered', (error) => 'rejected: ' + error.name);
  await sleep(300);
  const queued = (await call(holder, 'check_lock_status', { path: file })).structuredContent;
  check(`${label}: the waiter is queued`, queued.waiters === 1, queued);
  abort.abort();
  check(`${label}: the cancelled call ends on the client`, (await pending).startsWith('rejected'));
  // Withdrawn within one poll interval (20 ms); 300 ms is a wide margin.
  await sleep(300);
  const after = (await call(holder, 'check_lock_status', { path: file })).structuredContent;
  check(`${label}: a cancelled wait leaves the queue`, after.waiters === 0 && after.holders.length === 1, after);
  await call(holder, 'unlock_file', { path: file, lock_id: held.lock_id });
  await sleep(200);
  const free = (await call(holder, 'check_lock_status', { path: file })).structuredContent;
  check(`${label}: no grant left behind after the holder unlocks`, free.locked === false, free);
  const next = (await call(holder, 'lock_file', { path: file, ttl_seconds: 5 })).structuredContent;
  check(`${label}: the next agent gets it at once`, next.acquired === true, next);
  await call(holder, 'unlock_file', { path: file, lock_id: next.lock_id });
}

main(async () => {
  const a = await stdioClient('holder');
  const b = await stdioClient('waiter');
  await progress('stdio', a, b);
  await cancel('stdio', a, b);

  const { url } = await startHttpServer();
  const c = await httpClient(url, 'holder');
  const d = await httpClient(url, 'waiter');
  await progress('http', c, d);
  await cancel('http', c, d);
});
