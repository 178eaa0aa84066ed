// Four agent processes share one JSON file through lock_file/unlock_file, over stdio
// (a server each, as MCP hosts run them) and over HTTP (one server): 50 read-modify-
// writes each, no update lost, fences strictly increasing in the order of the writes.
// The four stdio servers share one audit log: every line of it is whole.
'use strict';
const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { check, main, startHttpServer, leaselock, lockDir, work } = require('./lib.cjs');

const agents = 4;
const rounds = 50;

const auditLog = path.join(work, 'audit.jsonl');

function runAgent(endpoint, file) {
  return new Promise((resolve) => {
    const child = childProcess.spawn(process.execPath, [
      path.join(__dirname, 'agent.cjs'), leaselock, process.argv[3], lockDir, endpoint, 'rmw', file, String(rounds),
    ], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, AGENT_AUDIT_LOG: auditLog } });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

async function contend(label, endpoint) {
  const file = path.join(work, `${label}-shared.json`);
  fs.writeFileSync(file, JSON.stringify({ count: 0, fences: [] }));
  const results = await Promise.all(Array.from({ length: agents }, () => runAgent(endpoint, file)));
  for (const [i, result] of results.entries())
    check(`${label}: agent ${i} finished`, result.code === 0, result);
  const state = JSON.parse(fs.readFileSync(file, 'utf8'));
  check(`${label}: no update lost (${agents} x ${rounds})`, state.count === agents * rounds, state.count);
  let increasing = state.fences.length === agents * rounds;
  for (let i = 1; i < state.fences.length; i++) if (!(state.fences[i] > state.fences[i - 1])) increasing = false;
  check(`${label}: fences strictly increase in write order`, increasing);
  const perAgent = results.map((r) => { try { return JSON.parse(r.out).fences.length; } catch (_) { return -1; } });
  check(`${label}: every agent did its ${rounds} writes`, perAgent.every((n) => n === rounds), perAgent);
}

main(async () => {
  await contend('stdio', 'stdio');
  const lines = fs.readFileSync(auditLog, 'utf8').split('\n').filter((line) => line);
  let events = [];
  try {
    events = lines.map((line) => JSON.parse(line));
  } catch (error) {
    check('stdio: every audit line is whole JSON', false, String(error));
  }
  const count = (kind) => events.filter((e) => e.event === kind).length;
  check('stdio: the shared audit log has every grant and release', count('acquired') === agents * rounds &&
    count('released') === agents * rounds, { acquired: count('acquired'), released: count('released') });
  const { url } = await startHttpServer();
  await contend('http', url);
});
