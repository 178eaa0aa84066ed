// Protocol faults and both eras of the protocol, by raw messages: over stdio (lines) and
// over HTTP (requests with chosen headers). Each fault gets the answer the specification
// names, and the server keeps serving afterwards.
'use strict';
const childProcess = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');
const { check, main, startHttpServer, leaselock, lockDir, work } = require('./lib.cjs');

const modernMeta = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
};
const initialize = (id, version = '2025-11-25') => ({
  jsonrpc: '2.0', id, method: 'initialize',
  params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

// A raw stdio session: send(text) writes a line; next() resolves to the next message.
function rawStdio() {
  const server = childProcess.spawn(leaselock, ['mcp', '--dir', lockDir], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = [];
  const waiting = [];
  readline.createInterface({ input: server.stdout }).on('line', (line) => {
    let message;
    try {
      message = JSON.parse(line);
    } catch (_) {
      message = { notJson: line };
    }
    if (waiting.length) waiting.shift()(message);
    else lines.push(message);
  });
  return {
    server,
    send: (value) => server.stdin.write((typeof value === 'string' ? value : JSON.stringify(value)) + '\n'),
    next: () => new Promise((resolve, reject) => {
      if (lines.length) return resolve(lines.shift());
      const timer = setTimeout(() => reject(new Error('no answer in 10 s')), 10000);
      waiting.push((message) => {
        clearTimeout(timer);
        resolve(message);
      });
    }),
  };
}

async function stdioFaults() {
  const s = rawStdio();
  s.send('{"jsonrpc": "2.0", "id": 1, "method": ');
  let answer = await s.next();
  check('stdio: malformed JSON gets -32700 with id null', answer.error && answer.error.code === -32700 && answer.id === null, answer);
  s.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
  answer = await s.next();
  check('stdio: a request before initialize is refused (-32602)', answer.id === 2 && answer.error && answer.error.code === -32602, answer);
  s.send({ jsonrpc: '2.0', id: 3, method: 'ping' });
  answer = await s.next();
  check('stdio: ping is answered before initialize', answer.id === 3 && JSON.stringify(answer.result) === '{}', answer);
  s.send({ jsonrpc: '1.0', id: 4, method: 'ping' });
  answer = await s.next();
  check('stdio: a wrong jsonrpc version is an invalid request (-32600)', answer.id === 4 && answer.error.code === -32600, answer);
  s.send('x'.repeat(2 * 1024 * 1024));
  answer = await s.next();
  check('stdio: a huge message is refused (-32600)', answer.error && answer.error.code === -32600 && /limit/.test(answer.error.message), answer.error);
  s.send(initialize(5, '2099-01-01'));
  answer = await s.next();
  check('stdio: an unknown version negotiates our newest', answer.id === 5 && answer.result.protocolVersion === '2025-11-25', answer);
  s.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  s.send({ jsonrpc: '2.0', id: 6, method: 'resources/list' });
  answer = await s.next();
  check('stdio: an unknown method gets -32601', answer.id === 6 && answer.error.code === -32601, answer);
  s.send({ jsonrpc: '2.0', id: 7, method: 'tools/list' });
  answer = await s.next();
  check('stdio: still serving after the faults', answer.id === 7 && answer.result.tools.length === 5, answer);

  // The modern era on the same process: per-request _meta, no handshake needed.
  s.send({ jsonrpc: '2.0', id: 8, method: 'server/discover', params: { _meta: modernMeta } });
  answer = await s.next();
  check('stdio: server/discover lists the versions', answer.id === 8 && answer.result.resultType === 'complete' &&
    JSON.stringify(answer.result.supportedVersions) === '["2026-07-28","2025-11-25","2025-06-18","2025-03-26"]', answer);
  s.send({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: { _meta: { ...modernMeta, 'io.modelcontextprotocol/protocolVersion': '1900-01-01' } } });
  answer = await s.next();
  check('stdio: an unsupported modern version gets -32022 with the supported list', answer.error &&
    answer.error.code === -32022 && answer.error.data.requested === '1900-01-01' && answer.error.data.supported.includes('2026-07-28'), answer);
  s.send({ jsonrpc: '2.0', id: 10, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } });
  answer = await s.next();
  check('stdio: a modern request without clientCapabilities gets -32602', answer.error && answer.error.code === -32602, answer);
  s.server.stdin.end();
  const code = await new Promise((resolve) => s.server.once('exit', resolve));
  check('stdio: the server exits 0 when stdin closes', code === 0, code);
}

async function stdioModern() {
  // A modern client opens with server/discover, never initialize.
  const s = rawStdio();
  s.send({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: modernMeta } });
  let answer = await s.next();
  check('modern: discover first', answer.result && answer.result.capabilities.tools !== undefined &&
    answer.result._meta['io.modelcontextprotocol/serverInfo'].name === 'leaselock', answer);
  s.send({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: modernMeta } });
  answer = await s.next();
  check('modern: tools/list is cacheable and complete', answer.result.resultType === 'complete' &&
    answer.result.ttlMs > 0 && answer.result.cacheScope === 'public' && answer.result.tools.length === 5, answer.result.resultType);
  const file = path.join(work, 'modern.txt');
  s.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { _meta: modernMeta, name: 'lock_file', arguments: { path: file, ttl_seconds: 10 } } });
  answer = await s.next();
  check('modern: tools/call works with resultType', answer.result.resultType === 'complete' &&
    answer.result.structuredContent.acquired === true && answer.result.ttlMs === undefined, answer);
  s.send({ jsonrpc: '2.0', id: 4, method: 'ping', params: { _meta: modernMeta } });
  answer = await s.next();
  check('modern: ping is not part of 2026-07-28 (-32601)', answer.error && answer.error.code === -32601, answer);
  s.server.stdin.end();
}

// One HTTP request; resolves to { status, headers, body (parsed when JSON) }.
function post(url, body, headers = {}, method = 'POST') {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const data = typeof body === 'string' ? body : JSON.stringify(body);
    const request = http.request({
      host: target.hostname, port: target.port, path: target.pathname, method,
      headers: {
        'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
        Host: target.host, 'Content-Length': Buffer.byteLength(data), ...headers,
      },
    }, (response) => {
      let text = '';
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => {
        let parsed = text;
        try {
          parsed = text ? JSON.parse(text) : '';
        } catch (_) {}
        resolve({ status: response.statusCode, headers: response.headers, body: parsed });
      });
    });
    request.on('error', reject);
    request.end(data);
  });
}

async function httpFaults() {
  const token = 'correct-horse-battery-staple';
  const tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  const { url } = await startHttpServer(['--auth-token-file', tokenFile]);
  const auth = { Authorization: `Bearer ${token}` };

  let r = await post(url, initialize(1));
  check('http: no bearer token gets 401', r.status === 401 && /Bearer/.test(r.headers['www-authenticate'] || ''), r.status);
  r = await post(url, initialize(1), { Authorization: 'Bearer wrong' });
  check('http: a wrong bearer token gets 401', r.status === 401, r.status);
  r = await post(url, initialize(1), { ...auth, Origin: 'https://evil.example' });
  check('http: a foreign Origin gets 403', r.status === 403, r.status);
  r = await post(url, initialize(1), { ...auth, Host: 'evil.example:80' });
  check('http: a foreign Host (DNS rebinding) gets 403', r.status === 403, r.status);
  r = await post(url, initialize(1), { ...auth, Origin: 'http://localhost:1234' });
  check('http: a loopback Origin is accepted', r.status === 200 && r.body.result.protocolVersion === '2025-11-25', r.status);
  const session = r.headers['mcp-session-id'];
  check('http: initialize opens a session', /^[0-9a-f]{32}$/.test(session || ''), session);
  const inSession = { ...auth, 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2025-11-25' };

  r = await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, inSession);
  check('http: a notification gets 202', r.status === 202 && r.body === '', r.status);
  r = await post(url, '{"jsonrpc": "2.0", "id": 2, ', inSession);
  check('http: malformed JSON gets 400 and -32700', r.status === 400 && r.body.error.code === -32700, r);
  r = await post(url, { jsonrpc: '2.0', id: 3, method: 'tools/list' }, auth);
  check('http: a request without a session gets 400', r.status === 400 && r.body.id === 3, r.status);
  r = await post(url, { jsonrpc: '2.0', id: 4, method: 'tools/list' }, { ...inSession, 'Mcp-Session-Id': 'f'.repeat(32) });
  check('http: an unknown session gets 404', r.status === 404, r.status);
  r = await post(url, { jsonrpc: '2.0', id: 5, method: 'tools/list' }, { ...inSession, 'MCP-Protocol-Version': '1999-01-01' });
  check('http: an unsupported MCP-Protocol-Version gets 400', r.status === 400, r.status);
  r = await post(url, { jsonrpc: '2.0', id: 6, method: 'nothing/here' }, inSession);
  check('http: an unknown method gets -32601', r.body.error && r.body.error.code === -32601, r.body);
  r = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping', params: { pad: 'x'.repeat(2 << 20) } }), inSession);
  check('http: a huge body gets 413', r.status === 413, r.status);
  r = await post(url, '', { ...auth, 'Content-Length': 0 }, 'GET');
  check('http: GET gets 405', r.status === 405, r.status);

  // Modern requests: stateless, headers mirror the body.
  const modern = { ...auth, 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'server/discover' };
  r = await post(url, { jsonrpc: '2.0', id: 8, method: 'server/discover', params: { _meta: modernMeta } }, modern);
  check('http: modern server/discover without a session', r.status === 200 && r.body.result.resultType === 'complete' &&
    r.headers['mcp-session-id'] === undefined, r);
  r = await post(url, { jsonrpc: '2.0', id: 9, method: 'server/discover', params: { _meta: modernMeta } }, { ...modern, 'Mcp-Method': 'tools/list' });
  check('http: a header not mirroring the body gets 400 and -32020', r.status === 400 && r.body.error.code === -32020, r);
  const old = { ...modernMeta, 'io.modelcontextprotocol/protocolVersion': '2024-01-01' };
  r = await post(url, { jsonrpc: '2.0', id: 10, method: 'tools/list', params: { _meta: old } },
    { ...auth, 'MCP-Protocol-Version': '2024-01-01', 'Mcp-Method': 'tools/list' });
  check('http: an unsupported modern version gets 400 and -32022', r.status === 400 && r.body.error.code === -32022 &&
    r.body.error.data.supported.includes('2026-07-28'), r);
  r = await post(url, { jsonrpc: '2.0', id: 11, method: 'prompts/list', params: { _meta: modernMeta } },
    { ...auth, 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'prompts/list' });
  check('http: a modern unknown method gets 404 and -32601', r.status === 404 && r.body.error.code === -32601, r);
  const file = path.join(work, 'http-modern.txt');
  r = await post(url, { jsonrpc: '2.0', id: 12, method: 'tools/call', params: { _meta: modernMeta, name: 'lock_file', arguments: { path: file, ttl_seconds: 5 } } },
    { ...auth, 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': '=?base64?bG9ja19maWxl?=' });
  check('http: modern tools/call (Base64 Mcp-Name)', r.status === 200 && r.body.result.structuredContent.acquired === true, r.body);

  // A client that sends Expect: 100-continue holds its body back until it is asked for it.
  const continued = await new Promise((resolve) => {
    const target = new URL(url);
    const data = JSON.stringify({ jsonrpc: '2.0', id: 15, method: 'ping', params: { pad: 'x'.repeat(4096) } });
    const request = http.request({
      host: target.hostname, port: target.port, path: target.pathname, method: 'POST',
      headers: { ...inSession, 'Content-Type': 'application/json', Accept: 'application/json',
        Expect: '100-continue', 'Content-Length': Buffer.byteLength(data) },
    }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on('continue', () => request.end(data));
    request.on('error', (error) => resolve(String(error)));
    setTimeout(() => resolve('no 100 Continue within 3 s'), 3000);
    request.flushHeaders();
  });
  check('http: Expect: 100-continue is answered', continued === 200, continued);

  r = await post(url, { jsonrpc: '2.0', id: 13, method: 'tools/list' }, inSession);
  check('http: still serving after the faults', r.status === 200 && r.body.result.tools.length === 5, r.status);
  r = await post(url, '', { ...inSession, 'Content-Length': 0 }, 'DELETE');
  check('http: DELETE ends the session', r.status === 200, r.status);
  r = await post(url, { jsonrpc: '2.0', id: 14, method: 'tools/list' }, inSession);
  check('http: an ended session gets 404', r.status === 404, r.status);
}

main(async () => {
  await stdioFaults();
  await stdioModern();
  await httpFaults();
});
