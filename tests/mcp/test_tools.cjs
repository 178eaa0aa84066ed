// The tools as an SDK client sees them, over stdio and over HTTP: the list (names in
// order, schemas, hints), each tool's result (structuredContent = the text content), and
// tool-level errors as isError results with a message.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { check, main, stdioClient, startHttpServer, httpClient, call, work } = require('./lib.cjs');

const expectedOrder = ['lock_file', 'unlock_file', 'renew_lock', 'check_lock_status', 'list_locks'];

async function exercise(client, label, file) {
  const { tools } = await client.listTools();
  check(`${label}: tools in their fixed order`, JSON.stringify(tools.map((t) => t.name)) ===
    JSON.stringify(expectedOrder), tools.map((t) => t.name));
  for (const tool of tools) {
    check(`${label}: ${tool.name} has a description`, (tool.description || '').length > 80);
    check(`${label}: ${tool.name} has an object inputSchema`, tool.inputSchema && tool.inputSchema.type === 'object');
    check(`${label}: ${tool.name} has an object outputSchema`, tool.outputSchema && tool.outputSchema.type === 'object');
  }
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  check(`${label}: lock_file requires path and ttl_seconds`,
    JSON.stringify(byName.lock_file.inputSchema.required) === '["path","ttl_seconds"]');
  check(`${label}: check_lock_status and list_locks are read-only`,
    byName.check_lock_status.annotations.readOnlyHint === true && byName.list_locks.annotations.readOnlyHint === true);
  check(`${label}: lock_file is not read-only`, byName.lock_file.annotations.readOnlyHint !== true);
  check(`${label}: unlock_file is idempotent`, byName.unlock_file.annotations.idempotentHint === true);

  // lock, see it, refuse a second writer, renew, unlock.
  const locked = await call(client, 'lock_file', { path: file, ttl_seconds: 30, owner: 'alice' });
  const lease = locked.structuredContent;
  check(`${label}: lock_file acquires a free file`, lease.acquired === true && /^[0-9a-f]{32}$/.test(lease.lock_id), lease);
  check(`${label}: mode write by default`, lease.mode === 'write');
  check(`${label}: expires in about 30 s`, lease.expires_in_ms > 28000 && lease.expires_in_ms <= 30000, lease);
  check(`${label}: expires_at is RFC 3339 UTC`, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(lease.expires_at));

  const busy = (await call(client, 'lock_file', { path: file, ttl_seconds: 5, owner: 'bob' })).structuredContent;
  check(`${label}: a held file is refused, not an error`, busy.acquired === false && busy.holders.length === 1, busy);
  check(`${label}: a refusal names the holder`, busy.holders[0].owner === 'alice' && busy.holders[0].mode === 'write');
  check(`${label}: a refusal gives retry_after_ms`, busy.retry_after_ms > 25000, busy);
  check(`${label}: a refusal shows no lock_id`, !JSON.stringify(busy).includes(lease.lock_id));

  const status = (await call(client, 'check_lock_status', { path: file })).structuredContent;
  check(`${label}: status shows the holder`, status.locked === true && status.mode === 'write' &&
    status.holders[0].fence === lease.fence, status);
  check(`${label}: status shows no lock_id`, !JSON.stringify(status).includes(lease.lock_id));

  const listed = (await call(client, 'list_locks', { prefix: path.dirname(file) })).structuredContent;
  check(`${label}: list_locks lists it`, listed.locks.length === 1 && listed.locks[0].path === file, listed);
  const none = (await call(client, 'list_locks', { prefix: '/nowhere/' })).structuredContent;
  check(`${label}: list_locks filters by prefix`, none.locks.length === 0);

  const renewed = (await call(client, 'renew_lock', { path: file, lock_id: lease.lock_id, ttl_seconds: 120 })).structuredContent;
  check(`${label}: renew_lock extends`, renewed.renewed === true && renewed.expires_in_ms > 100000, renewed);

  const unlocked = await call(client, 'unlock_file', { path: file, lock_id: lease.lock_id });
  check(`${label}: unlock_file releases`, unlocked.structuredContent.released === true && !unlocked.isError);
  const free = (await call(client, 'check_lock_status', { path: file })).structuredContent;
  check(`${label}: free after unlock`, free.locked === false && free.mode === null && free.holders.length === 0, free);

  // Tool-level errors: isError with a message saying what to do; nothing changed.
  const again = await call(client, 'unlock_file', { path: file, lock_id: lease.lock_id });
  check(`${label}: unlocking twice is an error result`, again.isError === true &&
    again.structuredContent.released === false && /released already|TTL/.test(again.content[0].text), again);
  const lost = await call(client, 'renew_lock', { path: file, lock_id: lease.lock_id, ttl_seconds: 10 });
  check(`${label}: renewing a released lock is an error result`, lost.isError === true &&
    lost.structuredContent.renewed === false && /lock_file/.test(lost.content[0].text), lost);
  const badTtl = await call(client, 'lock_file', { path: file, ttl_seconds: 0 });
  check(`${label}: ttl 0 is an error result`, badTtl.isError === true && /ttl_seconds/.test(badTtl.content[0].text), badTtl);
  const badId = await call(client, 'unlock_file', { path: file, lock_id: 'not-a-lock-id' });
  check(`${label}: a malformed lock_id is an error result`, badId.isError === true && /lock_id/.test(badId.content[0].text));
  const badMode = await call(client, 'lock_file', { path: file, ttl_seconds: 1, mode: 'append' });
  check(`${label}: an unknown mode is an error result`, badMode.isError === true && /mode/.test(badMode.content[0].text));
  const emptyPath = await call(client, 'lock_file', { path: '', ttl_seconds: 1 });
  check(`${label}: an empty path is an error result`, emptyPath.isError === true);
  check(`${label}: errors changed nothing`, (await call(client, 'check_lock_status', { path: file })).structuredContent.locked === false);

  // Protocol faults in a call: JSON-RPC errors.
  for (const [what, request] of [
    ['an unknown tool', { name: 'lock_everything', arguments: {} }],
    ['a missing argument', { name: 'lock_file', arguments: { path: file } }],
    ['an argument of the wrong type', { name: 'lock_file', arguments: { path: file, ttl_seconds: '30' } }],
  ]) {
    let code = null;
    try {
      await client.callTool(request);
    } catch (error) {
      code = error.code;
    }
    check(`${label}: ${what} is JSON-RPC error -32602`, code === -32602, code);
  }

  // Readers share; a writer waits for them.
  const r1 = (await call(client, 'lock_file', { path: file, ttl_seconds: 30, mode: 'read' })).structuredContent;
  const r2 = (await call(client, 'lock_file', { path: file, ttl_seconds: 30, mode: 'shared' })).structuredContent;
  check(`${label}: two readers share`, r1.acquired && r2.acquired && r2.mode === 'read' && r2.fence > r1.fence);
  const w = (await call(client, 'lock_file', { path: file, ttl_seconds: 30 })).structuredContent;
  check(`${label}: a writer is refused while readers hold`, w.acquired === false && w.holders.length === 2);
  await call(client, 'unlock_file', { path: file, lock_id: r1.lock_id });
  await call(client, 'unlock_file', { path: file, lock_id: r2.lock_id });
}

main(async () => {
  // The server never opens the files the paths name: a FIFO would block an open.
  const fifo = path.join(work, 'a-fifo');
  require('node:child_process').execFileSync('mkfifo', [fifo]);
  const stdio = await stdioClient();
  await exercise(stdio, 'stdio', fifo);
  check('stdio: the FIFO was never opened (still a FIFO, calls returned)', fs.statSync(fifo).isFIFO());

  const { url } = await startHttpServer();
  const http = await httpClient(url);
  await exercise(http, 'http', path.join(work, 'src', 'main.c'));
});
