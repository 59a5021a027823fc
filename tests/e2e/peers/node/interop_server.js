#!/usr/bin/env node
// A stock @grpc/grpc-js grpc.testing.TestService server for Baton's e2e tests
// (message_sizes.py), interop-style: EmptyCall, UnaryCall,
// StreamingOutputCall, StreamingInputCall and FullDuplexCall with
// response_size / response_parameters (size, interval_us), Echo Status
// (response_status) and Echo Metadata (x-grpc-test-echo-initial,
// x-grpc-test-echo-trailing-bin). Every other method answers UNIMPLEMENTED
// (grpc-js's default for a method without a handler). No compression.
// grpc-js's own message limits are left at their defaults: receive 4 MiB,
// send unlimited.
//
// When a call carries x-baton-payload-pattern, the payload of every request
// is checked byte for byte against the pattern (common.js) and a difference
// ends the call with DATA_LOSS.
//
//   node interop_server.js --port=N [--host=ADDR] [--use_tls=true --cert=FILE
//       --key=FILE [--ca=FILE --require_client_cert=true]] [--proto_dir=DIR]
//
// Prints "listening on PORT" once serving; SIGTERM or SIGINT stops it (exit 0).
'use strict';

const c = require('./common');
const { grpc } = c;

const INITIAL_KEY = 'x-grpc-test-echo-initial';
const TRAILING_KEY = 'x-grpc-test-echo-trailing-bin';

function zeros(n) {
  return { payload: { body: Buffer.alloc(n > 0 ? n : 0) } };
}

function checksPattern(call) {
  return call.metadata.get(c.PATTERN_KEY).length > 0;
}

// Echo Metadata: sends the initial echo now; returns the trailers to end with.
function echoMetadata(call) {
  const initial = call.metadata.get(INITIAL_KEY);
  if (initial.length) {
    const md = new grpc.Metadata();
    md.set(INITIAL_KEY, initial[0]);
    call.sendMetadata(md);
  }
  const trailers = new grpc.Metadata();
  const trailing = call.metadata.get(TRAILING_KEY);
  if (trailing.length) trailers.set(TRAILING_KEY, trailing[0]);
  return trailers;
}

// The error Echo Status asks for, or null.
function echoStatus(req, trailers) {
  const st = req.response_status;
  if (!st || !st.code) return null;
  return { code: st.code, details: st.message || '', metadata: trailers };
}

function badType(req) {
  const t = req.response_type;
  if (t === undefined || t === 'COMPRESSABLE' || t === 0) return null;
  return { code: grpc.status.INVALID_ARGUMENT, details: `unsupported response_type ${t}` };
}

function dataLoss(problem, trailers) {
  return { code: grpc.status.DATA_LOSS, details: problem, metadata: trailers };
}

function sleepUs(us) {
  return us > 0 ? new Promise((resolve) => setTimeout(resolve, us / 1000)) : null;
}

const handlers = {
  EmptyCall(call, callback) {
    callback(null, {}, echoMetadata(call));
  },

  UnaryCall(call, callback) {
    const trailers = echoMetadata(call);
    const req = call.request;
    const err = echoStatus(req, trailers) || badType(req);
    if (err) return callback(err);
    if (checksPattern(call)) {
      const problem = c.patternProblem(req.payload && req.payload.body, 0);
      if (problem) return callback(dataLoss(problem, trailers));
    }
    callback(null, zeros(req.response_size || 0), trailers);
  },

  StreamingInputCall(call, callback) {
    const trailers = echoMetadata(call);
    const check = checksPattern(call);
    let total = 0;
    let k = 0;
    let failed = null;
    call.on('data', (req) => {
      const body = req.payload && req.payload.body;
      if (check && !failed) failed = c.patternProblem(body, k);
      k++;
      total += body ? body.length : 0;
    });
    call.on('end', () => {
      if (failed) callback(dataLoss(failed, trailers));
      else callback(null, { aggregated_payload_size: total }, trailers);
    });
    call.on('error', () => {}); // cancelled: nothing to answer
  },

  StreamingOutputCall(call) {
    const trailers = echoMetadata(call);
    respond(call, call.request)
      .then((err) => finish(call, err || echoStatus(call.request, trailers), trailers))
      .catch((err) => finish(call, { code: grpc.status.INTERNAL, details: String(err) }, trailers));
  },

  FullDuplexCall(call) {
    const trailers = echoMetadata(call);
    const check = checksPattern(call);
    let k = 0;
    let done = false;
    // Requests are answered in order, each after the previous one's responses.
    let chain = Promise.resolve();
    call.on('data', (req) => {
      const index = k++;
      chain = chain.then(async () => {
        if (done) return;
        const problem = check ? c.patternProblem(req.payload && req.payload.body, index) : null;
        const err = problem ? dataLoss(problem, trailers) : echoStatus(req, trailers);
        if (err) {
          done = true;
          return finish(call, err, trailers);
        }
        const bad = await respond(call, req);
        if (bad) {
          done = true;
          finish(call, bad, trailers);
        }
      });
    });
    call.on('end', () => {
      chain = chain.then(() => {
        if (!done) {
          done = true;
          finish(call, null, trailers);
        }
      });
    });
    call.on('error', () => {
      done = true;
    });
  },
};

// Writes the responses one StreamingOutputCallRequest asks for; returns an
// error when the request is bad.
async function respond(call, req) {
  const bad = badType(req);
  if (bad) return bad;
  for (const p of req.response_parameters || []) {
    const pause = sleepUs(p.interval_us || 0);
    if (pause) await pause;
    if (call.cancelled) return null;
    if (!call.write(zeros(p.size || 0))) await new Promise((resolve) => call.once('drain', resolve));
  }
  return null;
}

function finish(call, err, trailers) {
  if (call.cancelled) return;
  if (err) {
    // grpc-js ends a server stream with the status of an 'error' event.
    const e = Object.assign(new Error(err.details), err);
    e.metadata = err.metadata || trailers;
    call.emit('error', e);
  } else {
    call.end(trailers);
  }
}

function main(argv) {
  let f;
  try {
    f = c.parseFlags(argv, ['port', 'host', 'use_tls', 'cert', 'key', 'ca', 'require_client_cert', 'proto_dir']);
  } catch (e) {
    console.error(`interop_server.js: ${e.message}`);
    return 2;
  }
  const port = Number(f.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('interop_server.js: --port=N is required');
    return 2;
  }
  const def = c.loadDefinition(f.proto_dir);
  const pkg = grpc.loadPackageDefinition(def);
  const server = new grpc.Server();
  server.addService(pkg.grpc.testing.TestService.service, handlers);

  let creds;
  if (c.boolFlag(f.use_tls)) {
    if (!f.cert || !f.key) {
      console.error('interop_server.js: --use_tls needs --cert and --key');
      return 2;
    }
    const requireCert = c.boolFlag(f.require_client_cert);
    creds = grpc.ServerCredentials.createSsl(
      f.ca ? c.readFile(f.ca) : null,
      [{ private_key: c.readFile(f.key), cert_chain: c.readFile(f.cert) }],
      requireCert,
    );
  } else {
    creds = grpc.ServerCredentials.createInsecure();
  }
  const addr = `${f.host || '127.0.0.1'}:${port}`;
  server.bindAsync(addr, creds, (err, bound) => {
    if (err) {
      console.error(`interop_server.js: cannot listen on ${addr}: ${err.message}`);
      process.exit(1);
    }
    console.log(`listening on ${bound}`);
  });
  const stop = () => {
    setTimeout(() => {
      server.forceShutdown();
      process.exit(0);
    }, 1000).unref();
    server.tryShutdown(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return null;
}

const rc = main(process.argv.slice(2));
if (rc !== null) process.exitCode = rc;
