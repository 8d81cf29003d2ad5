// Hostile requests against a Kosmos2 gateway from a client no one here wrote: @grpc/grpc-js with @grpc/proto-loader
// reading protos/ as they are. Usage: node hostile.mjs HOST:PORT [COUNT=2000] [IN_FLIGHT=16] [API_KEY]
// Prints one JSON summary line; exits 1 when any answer has a status outside the allowed set (or a call hangs past
// its deadline), 2 on a usage error.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const [address, countArg = '2000', inFlightArg = '16', apiKey = ''] = process.argv.slice(2);
if (!address) {
  console.error('usage: node hostile.mjs HOST:PORT [COUNT] [IN_FLIGHT] [API_KEY]');
  process.exit(2);
}
const count = Number(countArg);
const inFlight = Number(inFlightArg);
const here = path.dirname(fileURLToPath(import.meta.url));
const definition = protoLoader.loadSync('kosmos2/v1/kosmos2.proto', {
  includeDirs: [path.join(here, '..', '..', 'protos')],
  keepCase: true, longs: String, enums: String, defaults: false, oneofs: true,
});
const Kosmos2 = grpc.loadPackageDefinition(definition).kosmos2.v1.Kosmos2;
const client = new Kosmos2(address, grpc.credentials.createInsecure(), {
  'grpc.max_send_message_length': 64 << 20, 'grpc.max_receive_message_length': 64 << 20,
});
const metadata = new grpc.Metadata();
if (apiKey) metadata.add('x-api-key', apiKey);

const ALLOWED = new Set(['OK', 'INVALID_ARGUMENT', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'NOT_FOUND', 'OUT_OF_RANGE']);
const statusName = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));
let seed = 1234;
const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const pick = (items) => items[Math.floor(rand() * items.length)];

function crc32(buf) {
  let c, crc = 0xffffffff;
  for (const b of buf) { c = (crc ^ b) & 0xff; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; crc = (crc >>> 8) ^ c; }
  return (crc ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function png(width, height, pixels) {
  const header = Buffer.alloc(13); header.writeUInt32BE(width, 0); header.writeUInt32BE(height, 4); header[8] = 8; header[9] = 2;
  const raw = pixels ?? Buffer.concat(Array.from({ length: height }, () => Buffer.concat([Buffer.from([0]), crypto.randomBytes(width * 3)])));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
const goodPng = png(48, 32);
const lone = () => pick(['\ud800', '\udfff', 'a\ud83d', '\ude00b']);
const oddText = () => pick([
  `What is ${lone()} this?`, '', ' ', '\u0000\u0001\u0002', 'x'.repeat(20000), '<phrase><phrase>a</phrase>', '<patch_index_9999>',
  '🐕🐕🐕 猫', '<grounding><grounding><grounding>', '</s></s>', '\ufeff\u202e right to left', lone(),
]);
const box = () => pick([
  { x1: NaN, y1: 0, x2: 1, y2: 1 }, { x1: 0, y1: 0, x2: Infinity, y2: 1 }, { x1: -5, y1: -5, x2: -1, y2: -1 },
  { x1: 0.9, y1: 0.9, x2: 0.1, y2: 0.1 }, { x1: 0.1, y1: 0.1, x2: 0.5, y2: 0.5 }, { x1: 1e308, y1: 0, x2: 1e309, y2: 1 },
  { patch: { top_left: 5000, bottom_right: 1 } }, { patch: { top_left: 40, bottom_right: 39 } }, { patch: { top_left: 0, bottom_right: 1023 } },
]);
const sampling = () => pick([
  { temperature: 1e30 }, { temperature: -1 }, { temperature: NaN }, { top_k: 4294967295 }, { top_p: 5 }, { top_p: -0.5 },
  { repetition_penalty: -3 }, { repetition_penalty: Infinity }, { seed: '18446744073709551615', temperature: 0.7 }, {},
]);
const bigBody = crypto.randomBytes(8 << 20);
const image = () => rand() < 0.03 ? { data: bigBody } : pick([                 // 3 % are 8 MiB bodies
  { data: crypto.randomBytes(1 + Math.floor(rand() * 4096)) },                 // random bytes
  { data: goodPng.subarray(0, Math.floor(goodPng.length * rand())) },          // truncated PNG
  { data: (() => { const p = Buffer.from(goodPng); p.writeUInt32BE(100000, 16); p.writeUInt32BE(100000, 20); return p; })() }, // huge declared size
  { sha256: pick(['zz', 'A'.repeat(64), 'f'.repeat(64), crypto.randomBytes(32).toString('hex'), lone()]) }, // junk hashes
  { data: goodPng }, { data: goodPng }, {},                                      // valid, valid, none
]);

function generate(kind) {
  const request = { image: image(), stopping: { max_new_tokens: pick([4, 8, 1000000000]) } }; // short answers: the load is in the inputs
  switch (kind) {
    case 'prompt': request.prompt = oddText(); break;
    case 'task': request.task = pick(['TASK_KIND_BRIEF_CAPTION', 'TASK_KIND_VQA', 'TASK_KIND_PHRASE_GROUNDING', 99]); request.text = oddText(); break;
    case 'phrases': request.task = 'TASK_KIND_PHRASE_GROUNDING'; request.phrases = pick([[oddText()], Array(10000).fill('a'), ['<b>'], [lone()]]); break;
    case 'regions': request.prompt = '<phrase>it</phrase> is'; request.regions = pick([[{ boxes: [box()] }], Array(5000).fill({ boxes: [box()] }), [{ frame: 99, boxes: [box()] }], [{ phrase: lone(), boxes: [box()] }]]); break;
    case 'sampling': request.task = 'TASK_KIND_BRIEF_CAPTION'; request.sampling = sampling(); break;
    case 'stops': request.task = 'TASK_KIND_BRIEF_CAPTION'; request.stopping = { max_new_tokens: 4, stop_sequences: pick([Array(1000).fill('a'), [''], [lone()], ['x'.repeat(10000)]]) }; break;
    default: request.task = 'TASK_KIND_BRIEF_CAPTION'; request.image = { data: goodPng }; request.stopping = { max_new_tokens: 4 };
  }
  return new Promise((resolve) => {
    const call = client.Generate(request, metadata, { deadline: Date.now() + 120000 });
    call.on('data', () => {});
    call.on('error', (e) => resolve(statusName[e.code]));
    call.on('end', () => resolve('OK'));
  });
}

function session(kind) {
  return new Promise((resolve) => {
    const done = (e) => resolve(e ? statusName[e.code] : 'OK');
    if (kind === 'create') {
      client.CreateSession({ image: image(), options: { sampling: sampling() } }, metadata, { deadline: Date.now() + 120000 }, done);
      return;
    }
    if (kind === 'get' || kind === 'delete') {
      const id = pick(['nope', lone(), `a${lone()}b`, '', 'x'.repeat(100000)]);
      client[kind === 'get' ? 'GetSession' : 'DeleteSession']({ session_id: id }, metadata, { deadline: Date.now() + 120000 }, done);
      return;
    }
    const call = client.SendTurn({ session_id: pick(['nope', lone(), 'a'.repeat(32), '']), text: oddText(), regions: [{ phrase: pick(['it', lone()]), boxes: [box()] }] },
      metadata, { deadline: Date.now() + 120000 });
    call.on('data', () => {});
    call.on('error', done);
    call.on('end', () => done());
  });
}

const kinds = ['prompt', 'task', 'phrases', 'regions', 'sampling', 'stops', 'valid', 'create', 'turn', 'get', 'delete'];
const byStatus = {};
const unexpected = [];
const started = Date.now();
let next = 0;
async function worker() {
  while (next < count) {
    const index = next++;
    const kind = kinds[index % kinds.length];
    const status = await (['create', 'turn', 'get', 'delete'].includes(kind) ? session(kind) : generate(kind));
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    if (!ALLOWED.has(status)) unexpected.push({ index, kind, status });
  }
}
await Promise.all(Array.from({ length: inFlight }, worker));
client.close();
const summary = { total: count, in_flight: inFlight, elapsed_s: (Date.now() - started) / 1000, by_status: byStatus, unexpected: unexpected.length, first_unexpected: unexpected.slice(0, 20) };
console.log(JSON.stringify(summary));
process.exit(unexpected.length === 0 ? 0 : 1);
