// An agent killed while holding a lock (SIGKILL: its own stdio server then exits too, or
// its HTTP connection drops) keeps the lock until its TTL, and the next agent gets it
// then: leases belong to their lock_id, not to a connection or a server process.
'use strict';
const childProcess = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const { check, main, sleep, stdioClient, startHttpServer, httpClient, call, leaselock, lockDir, work } =
  require('./lib.cjs');

async function killed(label, endpoint, waiter) {
  const file = path.join(work, `${label}-killed.txt`);
  const ttl = 3;
  const agent = childProcess.spawn(process.execPath, [
    path.join(__dirname, 'agent.cjs'), leaselock, process.argv[3], lockDir, endpoint, 'hold', file, String(ttl),
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve) => readline.createInterface({ input: agent.stdout }).once('line', resolve));
  const lease = JSON.parse(line);
  check(`${label}: the agent holds the lock`, lease.acquired === true, lease);
  const grantedAt = Date.parse(lease.expires_at) - ttl * 1000;
  agent.kill('SIGKILL');
  await new Promise((resolve) => agent.once('exit', resolve));
  await sleep(300);  // its stdio server has seen stdin close and exited by now
  const still = (await call(waiter, 'check_lock_status', { path: file })).structuredContent;
  check(`${label}: the lease outlives the killed agent and its server`, still.locked === true, still);
  const got = (await call(waiter, 'lock_file', { path: file, ttl_seconds: 5, wait_seconds: 20 })).structuredContent;
  const at = Date.now() - grantedAt;
  check(`${label}: the next agent gets the lock at the TTL`, got.acquired === true && at >= ttl * 1000 - 100 &&
    at < ttl * 1000 + 2500, { got, at });
  check(`${label}: with a greater fence`, got.fence > lease.fence);
  await call(waiter, 'unlock_file', { path: file, lock_id: got.lock_id });
}

main(async () => {
  await killed('stdio', 'stdio', await stdioClient('waiter'));
  const { url } = await startHttpServer();
  await killed('http', url, await httpClient(url, 'waiter'));
});
