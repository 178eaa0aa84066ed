// --audit-log: two servers append to one file; every line is one JSON event (acquired
// with its wait, refused, timed_out, renewed, released, expired, cancelled), from both
// servers, and no line carries a lock_id.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { check, main, sleep, stdioClient, call, work } = require('./lib.cjs');

main(async () => {
  const log = path.join(work, 'audit.jsonl');
  const a = await stdioClient('agent-a', ['--audit-log', log]);
  const b = await stdioClient('agent-b', ['--audit-log', log]);
  const file = path.join(work, 'audited.txt');
  const lockIds = [];

  const held = (await call(a, 'lock_file', { path: file, ttl_seconds: 30 })).structuredContent;
  lockIds.push(held.lock_id);
  await call(b, 'lock_file', { path: file, ttl_seconds: 30 });                      // refused
  await call(b, 'lock_file', { path: file, ttl_seconds: 30, wait_seconds: 0.3 });   // timed_out
  await call(a, 'renew_lock', { path: file, lock_id: held.lock_id, ttl_seconds: 30 });
  await call(a, 'unlock_file', { path: file, lock_id: held.lock_id });
  const short = (await call(a, 'lock_file', { path: file, ttl_seconds: 0.2 })).structuredContent;
  lockIds.push(short.lock_id);
  await sleep(500);
  const after = (await call(b, 'lock_file', { path: file, ttl_seconds: 30 })).structuredContent;  // sees it expired
  lockIds.push(after.lock_id);
  const abort = new AbortController();
  const pending = call(a, 'lock_file', { path: file, ttl_seconds: 5, wait_seconds: 20 }, { signal: abort.signal }).catch(() => null);
  await sleep(200);
  abort.abort();
  await pending;
  await sleep(300);

  const lines = fs.readFileSync(log, 'utf8').split('\n').filter((line) => line.length > 0);
  let parsed = [];
  try {
    parsed = lines.map((line) => JSON.parse(line));
    check('every line is one JSON object', true);
  } catch (error) {
    check('every line is one JSON object', false, String(error));
  }
  const events = parsed.filter((e) => e.path === file).map((e) => e.event);
  for (const kind of ['acquired', 'refused', 'timed_out', 'renewed', 'released', 'expired', 'cancelled'])
    check(`the log has a ${kind} event`, events.includes(kind), events);
  const acquired = parsed.filter((e) => e.event === 'acquired');
  check('acquired events carry waited_ms, fence, owner and mode', acquired.length >= 3 && acquired.every((e) =>
    typeof e.waited_ms === 'number' && e.fence > 0 && e.owner.startsWith('agent-') && e.mode === 'write'), acquired);
  check('events carry RFC 3339 times', parsed.every((e) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(e.time)));
  check('both servers wrote to the log', new Set(parsed.map((e) => e.pid)).size === 2, parsed.map((e) => e.pid));
  const text = fs.readFileSync(log, 'utf8');
  check('no lock_id is logged', lockIds.every((id) => !text.includes(id)));
});
