// What the @grpc/grpc-js peers share: flags, the interop protos (loaded with
// @grpc/proto-loader from examples/interop/proto), credentials, the payload
// pattern of message_sizes and the arithmetic that sizes its messages.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEFAULT_PROTO_DIR = path.resolve(__dirname, '../../../../examples/interop/proto');
const SERVICE = 'grpc.testing.TestService';

// "--name=value" and bare "--name" (= "true") flags, as gRPC's interop peers take them.
function parseFlags(argv, known) {
  const flags = {};
  for (const arg of argv) {
    const m = /^--([a-z_]+)(?:=(.*))?$/s.exec(arg);
    if (!m || !known.includes(m[1])) {
      throw new Error(`unknown flag ${arg} (known: ${known.map((k) => '--' + k).join(' ')})`);
    }
    flags[m[1]] = m[2] === undefined ? 'true' : m[2];
  }
  return flags;
}

function boolFlag(v) {
  if (v === undefined) return false;
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new Error(`not a boolean: ${v}`);
}

// The package definition of grpc/testing/test.proto; bytes stay Buffers,
// enums are names, and fields at their default are left out of decoded objects.
function loadDefinition(protoDir) {
  return protoLoader.loadSync(['grpc/testing/test.proto'], {
    includeDirs: [protoDir || DEFAULT_PROTO_DIR],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: false,
    oneofs: true,
  });
}

function readFile(p) {
  return fs.readFileSync(p);
}

// ---- the payload pattern (tests/e2e/harness.py PATTERN_KEY) --------------
//
// A client sending PATTERN_KEY promises that byte i of the payload body in
// its k-th request message of the call (k from 0) is (i + k) % 251; the
// server checks every byte and ends the call with DATA_LOSS on a difference.
const PATTERN_KEY = 'x-baton-payload-pattern';
const PATTERN_VALUE = 'mod251';
let patternBuf = Buffer.alloc(0);

function payloadPattern(n, k) {
  k %= 251;
  if (patternBuf.length < n + k) {
    patternBuf = Buffer.alloc(n + k + 251);
    for (let i = 0; i < patternBuf.length; i++) patternBuf[i] = i % 251;
  }
  return patternBuf.subarray(k, k + n);
}

// null when body is payloadPattern(body.length, k), else where it differs.
function patternProblem(body, k) {
  body = body || Buffer.alloc(0);
  const want = payloadPattern(body.length, k);
  if (body.equals(want)) return null;
  let i = 0;
  while (body[i] === want[i]) i++;
  return `payload of request ${k} (${body.length} bytes): byte ${i} is ${body[i]}, want ${want[i]}`;
}

// ---- message sizes ---------------------------------------------------------
//
// The length of each serialized message, from the proto3 wire format: every
// field number here is below 16, so every tag is one byte; a length-delimited
// field is tag + varint(length) + content; an int32 is tag + varint(value)
// and, in proto3, absent when 0 (response_type and Payload.type are
// COMPRESSABLE = 0, so never on the wire). Same arithmetic as
// message_sizes.py and baton-interop-client's message_sizes case.
function varintLen(v) {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}
const fieldLen = (n) => 1 + varintLen(n) + n;
const intField = (v) => (v ? 1 + varintLen(v) : 0);
// Payload { body = n bytes } as a field of its parent message.
const payloadField = (n) => fieldLen(n ? fieldLen(n) : 0);
const LEN = {
  // SimpleResponse, StreamingOutputCallResponse, StreamingInputCallRequest:
  // payload only.
  payloadOnly: (n) => payloadField(n),
  // SimpleRequest { response_size = r, payload = n bytes }
  simpleRequest: (n, r) => intField(r) + payloadField(n),
  // StreamingOutputCallRequest { response_parameters = [{ size = r }],
  // payload = n bytes }
  outputRequest: (n, r) => fieldLen(intField(r)) + payloadField(n),
};

// The largest body length n with len(n) <= target: the message is exactly
// target bytes, or one or two under where a varint grows by a byte.
function fit(len, target) {
  let n = Math.max(0, target - 16);
  while (len(n + 1) <= target) n++;
  while (n > 0 && len(n) > target) n--;
  return n;
}

module.exports = {
  grpc,
  SERVICE,
  DEFAULT_PROTO_DIR,
  parseFlags,
  boolFlag,
  loadDefinition,
  readFile,
  PATTERN_KEY,
  PATTERN_VALUE,
  payloadPattern,
  patternProblem,
  LEN,
  fit,
};
