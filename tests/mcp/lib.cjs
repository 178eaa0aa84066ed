// tests/mcp/lib.cjs — what the MCP server's tests share. Each tests/mcp/test_*.cjs runs as
//   node test_X.cjs PATH/TO/leaselock SDK_DIR
// where SDK_DIR holds node_modules/@modelcontextprotocol/sdk (install_sdk.sh puts it
// there). check() counts failures; finish() exits 1 if any check failed.
'use strict';
const assert = require('node:assert');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const leaselock = process.argv[2];
const sdkDir = process.argv[3];
if (!leaselock || !sdkDir) {
  console.error('usage: node test_X.cjs PATH/TO/leaselock SDK_DIR');
  process.exit(2);
}

function sdk(module) {
  return require(require.resolve(`@modelcontextprotocol/sdk/${module}`, { paths: [sdkDir] }));
}
const { Client } = sdk('client/index.js');
const { StdioClientTransport } = sdk('client/stdio.js');
const { StreamableHTTPClientTransport } = sdk('client/streamableHttp.js');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'leaselock-mcp-test.'));
const lockDir = path.join(work, 'locks');
// The storage option every server of the test gets: this lock directory, or after
// usePostgres() a database of the test's own.
const storage = ['--dir', lockDir];
const cleanups = [];
process.on('exit', () => {
  for (const cleanup of cleanups.reverse()) {
    try {
      cleanup();
    } catch (_) {}
  }
  fs.rmSync(work, { recursive: true, force: true });
});

let failures = 0;
let checks = 0;
function check(what, condition, detail) {
  checks += 1;
  if (!condition) {
    failures += 1;
    console.error(`FAIL: ${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
  }
}
function finish() {
  console.log(`${checks - failures}/${checks} checks passed`);
  process.exit(failures === 0 ? 0 : 1);
}
// Runs `body`, reporting an exception as a failure, then finishes.
async function main(body) {
  try {
    await body();
  } catch (error) {
    failures += 1;
    console.error(`FAIL: ${error && error.stack ? error.stack : error}`);
  }
  finish();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A client of its own stdio server (as each agent of an MCP host has).
async function stdioClient(name = 'test-agent', extraArgs = []) {
  const transport = new StdioClientTransport({
    command: leaselock,
    args: ['mcp', ...storage, ...extraArgs],
    stderr: 'pipe',
  });
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(transport);
  cleanups.push(() => transport.close());
  return client;
}

// Starts `leaselock mcp --http 127.0.0.1:0 ARGS`; resolves to { url, process }.
function startHttpServer(extraArgs = []) {
  return new Promise((resolve, reject) => {
    const server = childProcess.spawn(
      leaselock,
      ['mcp', ...storage, '--http', '127.0.0.1:0', ...extraArgs],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    cleanups.push(() => server.kill('SIGKILL'));
    let text = '';
    server.stderr.on('data', (chunk) => {
      text += chunk;
      const found = /serving (http:\/\/\S+\/mcp)/.exec(text);
      if (found) resolve({ url: found[1], process: server });
    });
    server.on('exit', (code) => reject(new Error(`HTTP server exited (${code}): ${text}`)));
  });
}

async function httpClient(url, name = 'test-agent', headers = {}) {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(transport);
  cleanups.push(() => transport.close());
  return client;
}

// Calls a tool; returns its structuredContent, after checking that the text content
// carries the same JSON.
async function call(client, name, args, options = {}) {
  const result = await client.callTool({ name, arguments: args }, undefined, options);
  if (result.structuredContent !== undefined) {
    // The last text block carries the same JSON (an error's message comes before it).
    const text = result.content[result.content.length - 1].text;
    assert.deepStrictEqual(JSON.parse(text), result.structuredContent, `${name}: text != structured`);
  }
  return result;
}

// Makes every server of this test use a database of its own on the server
// $LEASELOCK_TEST_POSTGRES names (dropped at exit); throws (failing the test) without it.
// Returns { conninfo, password, sql } (sql(TEXT) runs TEXT in that database, as the
// test server's superuser).
function usePostgres() {
  const admin = process.env.LEASELOCK_TEST_POSTGRES;
  if (!admin)
    throw new Error('LEASELOCK_TEST_POSTGRES is not set: this test needs a PostgreSQL server ' +
                    '(run tools/test.sh, or eval "$(tools/postgres_cluster.sh start DIR)")');
  const psql = ['psql', ...fs.readdirSync('/usr/lib/postgresql').sort().reverse()
    .map((version) => `/usr/lib/postgresql/${version}/bin/psql`)].find((candidate) => {
    try {
      childProcess.execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return true;
    } catch (_) {
      return false;
    }
  });
  if (!psql) throw new Error('no psql found (apt-get install postgresql-client)');
  const run = (conninfo, text) =>
    childProcess.execFileSync(psql, ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', conninfo, '-c', text],
                              { encoding: 'utf8', env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning' } });
  const database = `mcp_${path.basename(process.argv[1], '.cjs')}_${process.pid}`.replace(/[^a-z0-9_]/g, '_');
  run(admin, `CREATE DATABASE ${database}`);
  cleanups.unshift(() => run(admin, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  const conninfo = `${admin} dbname=${database}`;
  storage.splice(0, storage.length, '--postgres', conninfo);
  const password = (/(?:^| )password=(\S+)/.exec(admin) || [])[1];
  if (!password) throw new Error('LEASELOCK_TEST_POSTGRES has no password= (the test checks it is never shown)');
  return { conninfo, password, sql: (text) => run(conninfo, text) };
}

module.exports = {
  leaselock,
  lockDir,
  storage,
  usePostgres,
  work,
  sdk,
  Client,
  check,
  finish,
  main,
  sleep,
  stdioClient,
  startHttpServer,
  httpClient,
  call,
  cleanups,
};
