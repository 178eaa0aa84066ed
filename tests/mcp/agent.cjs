// An "agent" process for the tests: node agent.cjs LEASELOCK SDK_DIR LOCK_DIR ENDPOINT ACTION FILE...
// ENDPOINT is "stdio" (a server of its own, with --audit-log $AGENT_AUDIT_LOG if set)
// or an HTTP URL. Actions:
//   rmw FILE COUNT   COUNT read-modify-writes of the JSON file FILE, each between
//                    lock_file (waiting) and unlock_file; prints the fences it got.
//   hold FILE TTL    takes FILE for TTL seconds, prints the result, then waits forever
//                    (the test kills it).
'use strict';
const fs = require('node:fs');

const [leaselock, sdkDir, lockDir, endpoint, action, file, amount] = process.argv.slice(2);
const sdk = (m) => require(require.resolve(`@modelcontextprotocol/sdk/${m}`, { paths: [sdkDir] }));
const { Client } = sdk('client/index.js');

async function connect() {
  const client = new Client({ name: `agent-${process.pid}`, version: '1.0.0' });
  if (endpoint === 'stdio') {
    const { StdioClientTransport } = sdk('client/stdio.js');
    const audit = process.env.AGENT_AUDIT_LOG ? ['--audit-log', process.env.AGENT_AUDIT_LOG] : [];
    await client.connect(new StdioClientTransport({ command: leaselock, args: ['mcp', '--dir', lockDir, ...audit] }));
  } else {
    const { StreamableHTTPClientTransport } = sdk('client/streamableHttp.js');
    await client.connect(new StreamableHTTPClientTransport(new URL(endpoint)));
  }
  return client;
}

async function main() {
  const client = await connect();
  const tool = async (name, args) => (await client.callTool({ name, arguments: args })).structuredContent;
  if (action === 'hold') {
    const lease = await tool('lock_file', { path: file, ttl_seconds: Number(amount) });
    process.stdout.write(JSON.stringify(lease) + '\n');
    setInterval(() => {}, 1000);
    return;
  }
  const fences = [];
  for (let i = 0; i < Number(amount); i++) {
    const lease = await tool('lock_file', { path: file, ttl_seconds: 30, wait_seconds: 30 });
    if (!lease.acquired) throw new Error('not acquired after 30 s: ' + JSON.stringify(lease));
    const state = JSON.parse(fs.readFileSync(file, 'utf8'));
    state.count += 1;
    state.fences.push(lease.fence);
    fs.writeFileSync(file + '.tmp', JSON.stringify(state));
    fs.renameSync(file + '.tmp', file);
    fences.push(lease.fence);
    const done = await tool('unlock_file', { path: file, lock_id: lease.lock_id });
    if (!done.released) throw new Error('unlock failed: ' + JSON.stringify(done));
  }
  process.stdout.write(JSON.stringify({ fences }) + '\n');
  await client.close();
  process.exit(0);
}
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
