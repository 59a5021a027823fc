#!/usr/bin/env node
// The message-size matrix from a stock @grpc/grpc-js client (see
// tests/e2e/message_sizes.py, which runs it): for every size, the four call
// kinds of grpc.testing.TestService with messages of that serialized size in
// both directions,
//
//   UnaryCall/S            request and response of S bytes
//   StreamingOutputCall/S  three responses of S bytes
//   StreamingInputCall/S   three requests of S bytes
//   FullDuplexCall/S       two ping-pong exchanges of S bytes each way
//
// Requests carry the payload pattern (common.js; the server checks it),
// responses must be all zeros of the asked length. Every call has a deadline
// (--rpc_timeout, seconds), so a stall fails its cell; after a failed cell the
// next one starts on a fresh connection. Prints "PASS <Kind>/<size> (ms)" or
// "FAIL <Kind>/<size>: why" per cell; exits 0 iff every cell passed.
//
//   node message_sizes_client.js --server_port=N [--server_host=H]
//       [--use_tls=true [--ca=FILE] [--server_host_override=NAME]]
//       [--test_case=message_sizes] [--sizes=N,N,...] [--rpc_timeout=20]
'use strict';

const c = require('./common');
const { grpc } = c;

// 1 KiB, 16 KiB, 64 KiB - 1, 64 KiB + 1, 1 MiB, 3 MiB and 4 MiB - 64: every
// size is that of the whole serialized message, which gRPC's default 4 MiB
// limit counts (the 5-byte length prefix is not counted).
const DEFAULT_SIZES = [1024, 16384, 65535, 65537, 1048576, 3145728, 4194240];
const KINDS = ['UnaryCall', 'StreamingOutputCall', 'StreamingInputCall', 'FullDuplexCall'];

class Matrix {
  constructor(f, def) {
    this.f = f;
    this.def = def;
    this.ctor = grpc.loadPackageDefinition(def).grpc.testing.TestService;
    this.timeoutMs = Number(f.rpc_timeout || 20) * 1000;
    this.client = null;
    this.calls = []; // the calls of the current cell, cancelled when it fails
  }

  track(call) {
    this.calls.push(call);
    return call;
  }

  cancelAll() {
    for (const call of this.calls.splice(0)) call.cancel();
  }

  connect() {
    const f = this.f;
    const target = `${f.server_host || '127.0.0.1'}:${f.server_port}`;
    // A private subchannel pool: a fresh client is a fresh connection.
    const options = { 'grpc.use_local_subchannel_pool': 1, 'grpc.enable_retries': 0 };
    let creds;
    if (c.boolFlag(f.use_tls)) {
      creds = grpc.credentials.createSsl(f.ca ? c.readFile(f.ca) : null);
      if (f.server_host_override) options['grpc.ssl_target_name_override'] = f.server_host_override;
    } else {
      creds = grpc.credentials.createInsecure();
    }
    if (f.server_host_override) options['grpc.default_authority'] = f.server_host_override;
    this.client = new this.ctor(target, creds, options);
  }

  reconnect() {
    if (this.client) this.client.close();
    this.connect();
  }

  opts() {
    return { deadline: new Date(Date.now() + this.timeoutMs) };
  }

  md() {
    const md = new grpc.Metadata();
    md.set(c.PATTERN_KEY, c.PATTERN_VALUE);
    return md;
  }

  // Checks the arithmetic: the request serializes to exactly what it was sized for.
  checkLen(method, req, want, size) {
    const got = this.def[`${c.SERVICE}`][method].requestSerialize(req).length;
    check(got === want && got <= size, `${method} request serializes to ${got} bytes, sized for ${want} (<= ${size})`);
  }

  async UnaryCall(size) {
    const r = c.fit(c.LEN.payloadOnly, size);
    const n = c.fit((x) => c.LEN.simpleRequest(x, r), size);
    const req = { response_size: r, payload: { body: c.payloadPattern(n, 0) } };
    this.checkLen('UnaryCall', req, c.LEN.simpleRequest(n, r), size);
    const resp = await new Promise((resolve, reject) =>
      this.track(
        this.client.UnaryCall(req, this.md(), this.opts(), (err, res) => (err ? reject(err) : resolve(res))),
      ),
    );
    checkZeros(resp.payload, r, 'response');
  }

  async StreamingOutputCall(size) {
    const r = c.fit(c.LEN.payloadOnly, size);
    const req = { response_parameters: [{ size: r }, { size: r }, { size: r }] };
    const call = this.track(this.client.StreamingOutputCall(req, this.md(), this.opts()));
    const got = await collect(call);
    check(got.length === 3, `${got.length} responses, want 3`);
    got.forEach((resp, i) => checkZeros(resp.payload, r, `response ${i + 1}`));
  }

  async StreamingInputCall(size) {
    const n = c.fit(c.LEN.payloadOnly, size);
    let call;
    const done = new Promise((resolve, reject) => {
      call = this.track(
        this.client.StreamingInputCall(this.md(), this.opts(), (err, res) => (err ? reject(err) : resolve(res))),
      );
    });
    for (let k = 0; k < 3; k++) {
      const req = { payload: { body: c.payloadPattern(n, k) } };
      if (k === 0) this.checkLen('StreamingInputCall', req, c.LEN.payloadOnly(n), size);
      call.write(req);
    }
    call.end();
    const resp = await done;
    const total = resp.aggregated_payload_size || 0;
    check(total === 3 * n, `aggregated_payload_size ${total}, want ${3 * n}`);
  }

  async FullDuplexCall(size) {
    const r = c.fit(c.LEN.payloadOnly, size);
    const n = c.fit((x) => c.LEN.outputRequest(x, r), size);
    const call = this.track(this.client.FullDuplexCall(this.md(), this.opts()));
    const reader = new Reader(call);
    for (let k = 0; k < 2; k++) {
      const req = { response_parameters: [{ size: r }], payload: { body: c.payloadPattern(n, k) } };
      if (k === 0) this.checkLen('FullDuplexCall', req, c.LEN.outputRequest(n, r), size);
      call.write(req);
      const resp = await reader.next();
      check(resp !== null, `the call ended before response ${k + 1}`);
      checkZeros(resp.payload, r, `response ${k + 1}`);
    }
    call.end();
    const extra = await reader.next();
    check(extra === null, 'a response after the second, want none');
  }
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

function checkZeros(payload, n, what) {
  const body = (payload && payload.body) || Buffer.alloc(0);
  check(body.length === n, `${what}: payload of ${body.length} bytes, want ${n}`);
  for (let i = 0; i < body.length; i++) {
    if (body[i] !== 0) throw new Error(`${what}: payload byte ${i} is ${body[i]}, want 0`);
  }
}

// Every response of a server stream, or the call's error.
function collect(call) {
  return new Promise((resolve, reject) => {
    const got = [];
    call.on('data', (m) => got.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(got));
  });
}

// Pulls the responses of a stream one at a time: next() is the next message,
// null at the end, or rejects with the call's error.
class Reader {
  constructor(call) {
    this.queue = [];
    this.waiters = [];
    this.ended = false;
    this.error = null;
    call.on('data', (m) => this.push({ m }));
    call.on('end', () => this.push({ end: true }));
    call.on('error', (e) => this.push({ e }));
  }

  push(item) {
    const w = this.waiters.shift();
    if (w) this.settle(item, w);
    else this.queue.push(item);
  }

  settle(item, w) {
    if (item.e) w.reject(item.e);
    else w.resolve(item.end ? null : item.m);
  }

  next() {
    return new Promise((resolve, reject) => {
      const item = this.queue.shift();
      if (item) this.settle(item, { resolve, reject });
      else this.waiters.push({ resolve, reject });
    });
  }
}

function describe(err) {
  if (err && typeof err.code === 'number' && err.details !== undefined) {
    const name = Object.keys(grpc.status).find((k) => grpc.status[k] === err.code) || err.code;
    return `status ${name}: ${err.details}`;
  }
  return String(err && err.message ? err.message : err);
}

async function main(argv) {
  let f;
  try {
    f = c.parseFlags(argv, [
      'server_host', 'server_port', 'server_host_override', 'use_tls', 'ca',
      'test_case', 'sizes', 'rpc_timeout', 'proto_dir',
    ]);
  } catch (e) {
    console.error(`message_sizes_client.js: ${e.message}`);
    return 2;
  }
  if (!f.server_port) {
    console.error('message_sizes_client.js: --server_port is required');
    return 2;
  }
  if (f.test_case && f.test_case !== 'message_sizes') {
    console.error(`message_sizes_client.js: unknown test case ${f.test_case} (only message_sizes)`);
    return 2;
  }
  const sizes = f.sizes ? f.sizes.split(',').map(Number) : DEFAULT_SIZES;
  if (sizes.some((s) => !Number.isInteger(s) || s < 16 || s > 4194304)) {
    console.error(`message_sizes_client.js: bad --sizes=${f.sizes} (each from 16 to 4194304)`);
    return 2;
  }
  const mx = new Matrix(f, c.loadDefinition(f.proto_dir));
  mx.connect();
  let failed = 0;
  let cells = 0;
  for (const size of sizes) {
    for (const kind of KINDS) {
      const name = `${kind}/${size}`;
      const start = process.hrtime.bigint();
      cells++;
      try {
        await mx[kind](size);
        mx.calls.length = 0;
        const ms = Number((process.hrtime.bigint() - start) / 1000000n);
        console.log(`PASS ${name} (${ms} ms)`);
      } catch (err) {
        const ms = Number((process.hrtime.bigint() - start) / 1000000n);
        console.log(`FAIL ${name}: ${describe(err)} (after ${ms} ms)`);
        failed++;
        mx.cancelAll();
        mx.reconnect(); // a stalled connection must not fail the cells after it
      }
    }
  }
  mx.client.close();
  console.log(`${cells - failed}/${cells} cells passed`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (rc) => {
    process.exitCode = rc;
  },
  (err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exitCode = 1;
  },
);
