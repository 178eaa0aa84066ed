// Two MCP servers over one PostgreSQL database (as agents on two machines would run
// them; one over stdio, one over HTTP), driven by the MCP SDK's client: a lock taken
// through one is busy through the other, without its lock_id; once unlocked, the other
// gets it, with a higher fence; a waiting lock_file on one is woken by the unlock on the
// other. Then the storage fails under a running server (its schema dropped): a tool
// call gets a tool error naming the failure, never the password, and the server keeps
// serving.
'use strict';
const { check, main, sleep, stdioClient, startHttpServer, httpClient, call, usePostgres } =
  require('../lib.cjs');

main(async () => {
  const database = usePostgres();
  const a = await stdioClient('agent-a');
  const { url } = await startHttpServer();
  const b = await httpClient(url, 'agent-b');
  const path = '/srv/repo/src/main.c';

  const taken = (await call(a, 'lock_file', { path, ttl_seconds: 60, owner: 'agent-a' })).structuredContent;
  check('lock_file through server A acquires', taken.acquired === true, taken);
  const busy = (await call(b, 'lock_file', { path, ttl_seconds: 60 })).structuredContent;
  check('the same path through server B is busy', busy.acquired === false, busy);
  check('B names A as the holder', busy.holders && busy.holders[0].owner === 'agent-a', busy);
  check('B says how long until it may retry', busy.retry_after_ms > 50000, busy);
  const status = (await call(b, 'check_lock_status', { path })).structuredContent;
  check('check_lock_status through B shows it locked', status.locked === true, status);
  const listed = (await call(b, 'list_locks', { prefix: '/srv/repo/' })).structuredContent;
  check('list_locks through B shows it', listed.locks.length === 1 && listed.locks[0].path === path, listed);
  for (const [what, result] of [['busy lock_file', busy], ['check_lock_status', status], ['list_locks', listed]])
    check(`B's ${what} never shows A's lock_id`, !JSON.stringify(result).includes(taken.lock_id));

  const unlocked = (await call(a, 'unlock_file', { path, lock_id: taken.lock_id })).structuredContent;
  check('unlock_file through A releases', unlocked.released === true, unlocked);
  const retaken = (await call(b, 'lock_file', { path, ttl_seconds: 60 })).structuredContent;
  check('after the unlock, lock_file through B acquires', retaken.acquired === true, retaken);
  check('with a higher fence', retaken.fence > taken.fence, [taken.fence, retaken.fence]);

  // A waits on A's server; B's unlock on the other server wakes it.
  const started = Date.now();
  const waiting = call(a, 'lock_file', { path, ttl_seconds: 60, wait_seconds: 20 });
  await sleep(300);
  const released = (await call(b, 'unlock_file', { path, lock_id: retaken.lock_id })).structuredContent;
  check('unlock_file through B releases', released.released === true, released);
  const woken = (await waiting).structuredContent;
  const waited = Date.now() - started;
  check('the waiting lock_file through A gets the lock', woken.acquired === true, woken);
  check(`it was woken by the unlock, not its wait's end (${waited} ms)`, waited < 10000);

  // The storage fails under the running servers.
  database.sql('DROP SCHEMA leaselock CASCADE');
  const failed = await call(a, 'check_lock_status', { path });
  const message = failed.content.map((part) => part.text).join('\n');
  check('a tool call on failed storage is a tool error', failed.isError === true, failed);
  check('its message says the storage failed, and why',
        /^the lock storage failed: PostgreSQL at \S+: relation "leaselock\.\w+" does not exist/.test(message), message);
  check('its message never shows the password', !message.includes(database.password), message);
  const failedLock = await call(b, 'lock_file', { path: '/srv/other', ttl_seconds: 60 });
  check('lock_file on failed storage is a tool error too', failedLock.isError === true, failedLock);
  check('server A still answers', (await a.ping()) !== undefined);
  check('server B still answers', (await b.listTools()).tools.length === 5);
});
