// Signing oracles: the vendors' own SDKs sign generated requests offline at fixed dates, and
// this script prints, for each, the signing case of docs/signing.md and what the SDK produced.
//
//   node tests/oracles/generate.js > cases.json
//
// Nothing here computes a signature: ali-oss builds and signs its requests in its own request
// path (a capturing `urllib` stands in for the network) and in `signatureUrl` /
// `signatureUrlV4`; esdk-obs-nodejs signs in `makeRequest` (a capturing `third_http_lib` stands
// in for http) and in `createSignedUrlSync`; @smithy/signature-v4 signs with `sign` / `presign`.
// The canonical request and string to sign are read by wrapping the SDKs' own functions that
// return them, where the SDK has such functions.
'use strict';

const EventEmitter = require('events');
const querystring = require('querystring');
const legacyUrl = require('url');

const RealDate = Date;
let fixedNow = 0;
// The SDKs read the clock with `new Date()` and `Date.now()`: both give the case's time.
class FixedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(fixedNow);
    else super(...args);
  }
  static now() {
    return fixedNow;
  }
}
global.Date = FixedDate;

// ali-oss advises on every client with a token to set up token refresh; not about signing.
const warn = console.warn;
console.warn = (...args) => {
  if (!String(args[0]).includes('refreshSTSToken')) warn(...args);
};

const OSS = require('ali-oss');
const ossSign = require('ali-oss/lib/common/signUtils');
const ObsClient = require('esdk-obs-nodejs');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');

// What the SDKs' own canonical-string functions returned for the case being signed.
let seen = {};
function spy(object, name, field) {
  const original = object[name];
  object[name] = function (...args) {
    const out = original.apply(this, args);
    const record = value => {
      seen[field] = value;
      return value;
    };
    return out && typeof out.then === 'function' ? out.then(record) : record(out);
  };
}
spy(ossSign, 'getCanonicalRequest', 'canonical_request');
spy(ossSign, 'getStringToSign', 'string_to_sign');
spy(ossSign, 'buildCanonicalString', 'string_to_sign');
spy(SignatureV4.prototype, 'createCanonicalRequest', 'canonical_request');
spy(SignatureV4.prototype, 'createStringToSign', 'string_to_sign');

const KEYS = [
  'uploads/2024/report final.pdf',
  'ünïcødé/日本語 ファイル.txt',
  'a+b%20c#d?e=f&g~h.bin',
  'emoji 🚀/rocket launch.png',
  '  leading and trailing spaces  .txt',
  'quote\'s (paren) [bracket] {brace}!*.txt',
  'semi;colon,comma:colon@at$dollar.json',
  'percent%2Fliteral%.txt',
  'deep/nested/path/with.many.dots..tar.gz',
  'plain.txt',
];
const TOKEN = 'CAISx+Sts/Token==with+plus/and=equals';
const AK = 'LTAI5tFerryOracleKey';
const SK = 'Fr3yS3cretKeyForOracles/+=abcdefghij';
const BASE = RealDate.UTC(2024, 2, 15, 8, 30, 45);

function at(index) {
  fixedNow = BASE + index * 86_461_000; // a day, a minute and a second apart
  return new RealDate(fixedNow).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

const encodeKey = key =>
  encodeURIComponent(key)
    .replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%2F/g, '/');

function lowerEntries(headers) {
  return Object.entries(headers).map(([n, v]) => [n, String(v)]);
}

function credentials(token) {
  return { access_key_id: AK, secret_access_key: SK, security_token: token || null };
}

// ---------------------------------------------------------------------------------------------
// Alibaba OSS (ali-oss): V4 and V1, header mode through the client's request path.

function ossClient(version, { token, cname }) {
  const captured = [];
  const client = new OSS({
    region: 'oss-cn-hangzhou',
    accessKeyId: AK,
    accessKeySecret: SK,
    stsToken: token,
    bucket: 'ferry-oracle',
    secure: true,
    authorizationV4: version === 'v4',
    ...(cname ? { endpoint: 'https://files.example.com', cname: true } : {}),
    urllib: {
      request: async (url, params) => {
        captured.push({ url, params });
        throw new Error('offline: request captured');
      },
    },
  });
  return { client, captured };
}

const OSS_OPERATIONS = [
  ['put', (c, key) => c.put(key, Buffer.from('hello oracle'), { headers: { 'x-oss-meta-owner': ' ferry ' } })],
  ['initiate multipart', (c, key) => c.initMultipartUpload(key, { headers: { 'x-oss-storage-class': 'Standard' } })],
  ['upload part', (c, key) => request(c, 'PUT', key, { subres: { partNumber: 3, uploadId: 'UP+ID/0001=' } }, Buffer.from('part'))],
  ['complete', (c, key) => c.completeMultipartUpload(key, 'UP+ID/0001=', [{ number: 1, etag: '"AB"' }])],
  ['abort', (c, key) => c.abortMultipartUpload(key, 'UP+ID/0001=')],
  ['head version', (c, key) => c.head(key, { versionId: 'CAEQNhiBgM0BYiIDc4MGZjZGI2OTBjOTRmNTE5NmU5ZmQ4ZjY1YjE3NzY3' })],
  ['list parts with query', (c, key) => request(c, 'GET', key, { subres: { uploadId: 'u-1' } }, null, { 'max-parts': '100', 'part-number-marker': '2', 'encoding-type': 'url' })],
  ['acl', (c, key) => c.getACL(key)],
  ['delete', (c, key) => c.delete(key)],
  ['additional headers', (c, key) => request(c, 'PUT', key, { headers: { 'Content-Disposition': 'attachment; filename="x"', 'Cache-Control': 'no-cache', 'x-oss-meta-a': 'b' }, additionalHeaders: ['content-disposition', 'Cache-Control', 'x-oss-meta-a', 'Content-Type'] }, Buffer.from('x'))],
  ['additional host', (c, key) => request(c, 'GET', key, { headers: { host: c.options.cname ? 'files.example.com' : 'ferry-oracle.oss-cn-hangzhou.aliyuncs.com', Range: 'bytes=0-9' }, additionalHeaders: ['host', 'range'] })],
];

function request(client, method, key, options, content, query) {
  const params = client._objectRequestParams(method, key, options);
  if (content) params.content = content;
  if (query) params.query = query;
  params.successStatuses = [200];
  return client.request(params);
}

async function ossHeaderCase(version, index, op, key, { token, cname, keepDate }) {
  const time = at(index);
  const { client, captured } = ossClient(version, { token, cname });
  seen = {};
  const [name, run] = op;
  await run(client, key).catch(() => {});
  if (captured.length !== 1) throw new Error(`ali-oss sent ${captured.length} requests for ${name}`);
  const { url, params } = captured[0];
  const sent = lowerEntries(params.headers);
  const added = ['x-oss-content-sha256', 'x-oss-security-token', ...(keepDate ? [] : ['x-oss-date'])];
  const additional = name.startsWith('additional') ? additionalOf(name) : [];
  const input = sent.filter(([n]) => n !== 'authorization' && !added.includes(n.toLowerCase()) && !(additional.includes('host') && n === 'host'));
  const authorization = params.headers.authorization;
  return {
    name: `oss ${version} header: ${name} ${JSON.stringify(key)}${token ? ' +token' : ''}${cname ? ' cname' : ''}`,
    case: {
      dialect: 'oss',
      signature_version: version,
      method: params.method,
      url,
      headers: input,
      region: 'cn-hangzhou',
      service: 'oss',
      time,
      credentials: credentials(token),
      bucket: 'ferry-oracle',
      key,
      additional_headers: additional,
    },
    expected: {
      ...seen,
      signature: version === 'v4' ? authorization.split('Signature=')[1] : authorization.split(':')[1],
      authorization,
      headers: sent,
    },
  };
}

function additionalOf(name) {
  return name === 'additional host' ? ['host', 'range'] : ['content-disposition', 'Cache-Control', 'x-oss-meta-a', 'Content-Type'];
}

// ali-oss passes a presigned URL through Node's legacy url.parse and url.format, which escape
// `'` in the path: the unsigned URL of the case is the same round trip of the request URL.
const presignBase = url => legacyUrl.format(legacyUrl.parse(url));

async function ossV4PresignCase(index, key, { token, cname, queries, headers, additional }) {
  const time = at(index);
  const { client } = ossClient('v4', { token, cname });
  seen = {};
  const expires = 600 + index * 7;
  const url = await client.signatureUrlV4('PUT', expires, { headers, queries }, key, additional);
  return {
    name: `oss v4 presign ${JSON.stringify(key)}${token ? ' +token' : ''}${cname ? ' cname' : ''}`,
    case: {
      dialect: 'oss',
      signature_version: 'v4',
      method: 'PUT',
      url: presignBase(client._getReqUrl({ bucket: 'ferry-oracle', object: key, query: queries })),
      headers: lowerEntries(headers),
      region: 'cn-hangzhou',
      time,
      credentials: credentials(token),
      presign_expires: expires,
      bucket: 'ferry-oracle',
      key,
      additional_headers: additional || [],
    },
    expected: { ...seen, url, signature: new URL(url).searchParams.get('x-oss-signature'), headers: lowerEntries(headers) },
  };
}

async function ossV1PresignCase(index, key, { token, cname, options }) {
  const time = at(index);
  const { client } = ossClient('v1', { token, cname });
  seen = {};
  let subResource = {};
  const original = ossSign._signatureForURL;
  ossSign._signatureForURL = function (...args) {
    const out = original.apply(this, args);
    subResource = { ...out.subResource };
    return out;
  };
  const expires = 900 + index * 11;
  let url;
  try {
    url = client.signatureUrl(key, { ...options, expires });
  } finally {
    ossSign._signatureForURL = original;
  }
  delete subResource['security-token'];
  const base = presignBase(client._getReqUrl({ bucket: 'ferry-oracle', object: key }));
  const existing = querystring.stringify(subResource);
  const headers = Object.entries(options).filter(([n]) => /^(x-oss-|content-type|content-md5)/i.test(n));
  return {
    name: `oss v1 presign ${JSON.stringify(key)}${token ? ' +token' : ''}${cname ? ' cname' : ''}`,
    case: {
      dialect: 'oss',
      signature_version: 'v1',
      method: options.method || 'GET',
      url: existing ? `${base}?${existing}` : base,
      headers,
      region: 'cn-hangzhou',
      time,
      credentials: credentials(token),
      presign_expires: expires,
      bucket: 'ferry-oracle',
      key,
    },
    expected: { ...seen, url, signature: new URL(url).searchParams.get('Signature'), headers },
  };
}

// ---------------------------------------------------------------------------------------------
// Huawei OBS (esdk-obs-nodejs).

let obsContext = null;

async function obsClient({ token, cname, flavor }) {
  const captured = [];
  const http = {
    request(options) {
      const req = new EventEmitter();
      req.end = () => {
        captured.push(options);
        setImmediate(() => req.emit('error', new Error('offline: request captured')));
      };
      req.write = () => true;
      req.abort = () => {};
      return req;
    },
  };
  const client = new ObsClient({
    access_key_id: AK,
    secret_access_key: SK,
    security_token: token,
    server: cname ? 'https://files.example.com' : 'https://obs.cn-north-4.myhuaweicloud.com',
    is_cname: !!cname,
    is_signature_negotiation: false,
    max_retry_count: 0,
    third_http_lib: http,
  });
  await new Promise(resolve => setImmediate(resolve)); // initFactory finishes asynchronously
  if (!cname) obsContext = obsContext || client.util.signatureContext;
  // In CNAME mode the SDK always falls back to the S3 V2 scheme; the OBS scheme through a
  // user domain (the documentation's table 7) is obtained by giving it the OBS context back.
  if (cname && flavor === 'obs') client.util.signatureContext = obsContext;
  return { client, captured };
}

const OBS_OPERATIONS = [
  ['put', (c, p) => c.putObject({ ...p, Body: 'hello oracle', ContentType: 'text/plain', Metadata: { owner: ' ferry ' } })],
  ['initiate multipart', (c, p) => c.initiateMultipartUpload({ ...p, ContentType: 'application/octet-stream' })],
  ['upload part', (c, p) => c.uploadPart({ ...p, PartNumber: 2, UploadId: 'UP+ID/0001=', Body: 'part' })],
  ['complete', (c, p) => c.completeMultipartUpload({ ...p, UploadId: 'UP+ID/0001=', Parts: [{ PartNumber: 1, ETag: '"ab"' }] })],
  ['abort', (c, p) => c.abortMultipartUpload({ ...p, UploadId: 'UP+ID/0001=' })],
  ['list parts', (c, p) => c.listParts({ ...p, UploadId: 'u-1', MaxParts: 100, PartNumberMarker: 2 })],
  ['get with response headers', (c, p) => c.getObject({ ...p, ResponseContentType: 'text/plain; charset=utf-8', VersionId: 'v+1' })],
  ['metadata', (c, p) => c.getObjectMetadata(p)],
  ['acl', (c, p) => c.getObjectAcl(p)],
  ['delete', (c, p) => c.deleteObject(p)],
];

async function obsHeaderCase(index, op, key, { token, cname, flavor = 'obs', keepDate }) {
  const time = at(index);
  const { client, captured } = await obsClient({ token, cname, flavor });
  const [name, run] = op;
  await Promise.resolve(run(client, { Bucket: 'ferry-oracle', Key: key })).catch(() => {});
  if (captured.length !== 1) throw new Error(`esdk-obs-nodejs sent ${captured.length} requests for ${name}`);
  const { method, path, headers } = captured[0];
  const sent = lowerEntries(headers);
  const tokenHeader = flavor === 'obs' ? 'x-obs-security-token' : 'x-amz-security-token';
  const added = [tokenHeader, ...(keepDate ? [] : ['date'])];
  const authorization = headers.Authorization;
  return {
    name: `obs ${flavor} header: ${name} ${JSON.stringify(key)}${token ? ' +token' : ''}${cname ? ' cname' : ''}`,
    case: {
      dialect: 'obs',
      signature_version: flavor,
      method,
      url: `https://${headers.Host}${path}`,
      headers: sent.filter(([n]) => n !== 'Authorization' && !added.includes(n.toLowerCase())),
      time,
      credentials: credentials(token),
      bucket: cname ? null : 'ferry-oracle',
      key,
    },
    expected: { authorization, signature: authorization.split(':')[1], headers: sent },
  };
}

async function obsPresignCase(index, key, { token, cname, flavor = 'obs', query, headers, method }) {
  const time = at(index);
  const { client } = await obsClient({ token, cname, flavor });
  const expires = 300 + index * 13;
  const out = client.createSignedUrlSync({ Method: method, Bucket: 'ferry-oracle', Key: key, Expires: expires, Headers: headers, QueryParams: query });
  const host = cname ? 'files.example.com' : 'ferry-oracle.obs.cn-north-4.myhuaweicloud.com';
  const existing = Object.entries(query || {}).map(([n, v]) => (v ? `${encodeKey(n)}=${encodeKey(v)}` : encodeKey(n))).join('&');
  const inputHeaders = lowerEntries(out.ActualSignedRequestHeaders);
  return {
    name: `obs ${flavor} presign ${method} ${JSON.stringify(key)}${token ? ' +token' : ''}${cname ? ' cname' : ''}`,
    case: {
      dialect: 'obs',
      signature_version: flavor,
      method,
      url: `https://${host}:443/${encodeKey(key)}${existing ? `?${existing}` : ''}`,
      headers: inputHeaders,
      time,
      credentials: credentials(token),
      presign_expires: expires,
      bucket: cname ? null : 'ferry-oracle',
      key,
    },
    expected: {
      url: out.SignedUrl,
      signature: decodeURIComponent(out.SignedUrl.split('Signature=')[1]),
      headers: inputHeaders,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// AWS S3 (@smithy/signature-v4, as the AWS SDK for JavaScript v3 signs S3 requests).

function smithy(token) {
  return new SignatureV4({
    credentials: { accessKeyId: AK, secretAccessKey: SK, sessionToken: token },
    region: 'us-west-2',
    service: 's3',
    sha256: Sha256,
    uriEscapePath: false,
  });
}

const S3_REQUESTS = [
  ['put', 'PUT', {}, { 'content-type': 'text/plain', 'x-amz-meta-owner': '  ferry  oracle ' }, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['initiate multipart', 'POST', { uploads: '' }, {}, 'UNSIGNED-PAYLOAD'],
  ['upload part', 'PUT', { partNumber: '4', uploadId: 'UP+ID/0001=' }, { 'content-length': '4' }, 'UNSIGNED-PAYLOAD'],
  ['list parts', 'GET', { uploadId: 'u 1', 'max-parts': '100', 'part-number-marker': '2' }, {}, null],
];

const encodeQuery = value => encodeKey(value).replace(/\//g, '%2F');

function s3Url(key, query) {
  const qs = Object.entries(query).map(([n, v]) => `${encodeQuery(n)}=${encodeQuery(v)}`).join('&');
  return `https://ferry-oracle.s3.us-west-2.amazonaws.com/${encodeKey(key)}${qs ? `?${qs}` : ''}`;
}

async function s3Case(index, spec, key, { token, presign }) {
  const time = at(index);
  const [name, method, query, allHeaders, payload] = spec;
  // A presigned URL carries no x-amz-* header (smithy would hoist them into the query).
  const headers = Object.fromEntries(
    Object.entries(allHeaders).filter(([n]) => !(presign && n.startsWith('x-amz-'))),
  );
  const host = 'ferry-oracle.s3.us-west-2.amazonaws.com';
  const request = {
    method,
    protocol: 'https:',
    hostname: host,
    path: `/${encodeKey(key)}`,
    query: { ...query },
    headers: { host, ...headers, ...(payload && !presign ? { 'x-amz-content-sha256': payload } : {}) },
  };
  seen = {};
  const signingDate = new RealDate(fixedNow);
  const expires = 900 + index;
  const signed = presign
    ? await smithy(token).presign(request, { signingDate, expiresIn: expires })
    : await smithy(token).sign(request, { signingDate });
  const emptyHash = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  const sent = lowerEntries(signed.headers);
  return {
    name: `s3 ${presign ? 'presign' : 'header'}: ${name} ${JSON.stringify(key)}${token ? ' +token' : ''}`,
    case: {
      dialect: 's3',
      method,
      url: s3Url(key, query),
      headers: lowerEntries(headers),
      payload_sha256: presign ? emptyHash : payload || emptyHash,
      region: 'us-west-2',
      service: 's3',
      time,
      credentials: credentials(token),
      ...(presign ? { presign_expires: expires } : {}),
    },
    expected: {
      ...seen,
      ...(presign
        ? { url_query: Object.entries(signed.query).map(([n, v]) => [n, String(v)]), signature: signed.query['X-Amz-Signature'] }
        : { authorization: signed.headers.authorization, signature: signed.headers.authorization.split('Signature=')[1], headers: sent }),
    },
  };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const out = [];
  let n = 0;
  for (const version of ['v4', 'v1']) {
    for (const [i, op] of OSS_OPERATIONS.entries()) {
      if (version === 'v1' && op[0].startsWith('additional')) continue;
      for (const variant of [0, 1, 2]) {
        const key = KEYS[(i * 3 + variant) % KEYS.length];
        const options = { token: variant !== 1 ? TOKEN : undefined, cname: variant === 2, keepDate: variant === 1 };
        out.push(await ossHeaderCase(version, n++, op, key, options));
      }
    }
  }
  for (const [i, key] of KEYS.entries()) {
    const token = i % 2 === 0 ? TOKEN : undefined;
    out.push(await ossV4PresignCase(n++, key, {
      token,
      cname: i % 3 === 0,
      queries: i % 2 ? { uploadId: 'UP+ID/0001=', partNumber: String(i) } : { uploads: null },
      headers: i % 4 === 0 ? { 'content-type': 'application/octet-stream', 'x-oss-meta-m': 'v' } : { 'Content-Disposition': 'inline' },
      additional: i % 4 === 0 ? [] : ['content-disposition', 'x-oss-meta-m'],
    }));
    out.push(await ossV1PresignCase(n++, key, {
      token,
      cname: i % 3 === 0,
      options: [
        { method: 'GET' },
        { method: 'PUT', 'Content-Type': 'application/octet-stream', 'x-oss-meta-a': 'b' },
        { method: 'GET', response: { 'content-type': 'text/plain; charset=utf-8', 'content-disposition': 'attachment; filename="ü.txt"' } },
        { method: 'GET', process: 'image/resize,w_100' },
      ][i % 4],
    }));
  }
  for (const [i, op] of OBS_OPERATIONS.entries()) {
    for (const variant of [0, 1, 2, 3]) {
      const key = KEYS[(i * 4 + variant) % KEYS.length];
      out.push(await obsHeaderCase(n++, op, key, {
        token: variant % 2 === 0 ? TOKEN : undefined,
        cname: variant >= 2,
        flavor: variant === 3 ? 'v2' : 'obs',
        keepDate: variant === 1,
      }));
    }
  }
  for (const [i, key] of KEYS.entries()) {
    out.push(await obsPresignCase(n++, key, {
      token: i % 2 === 0 ? TOKEN : undefined,
      cname: i % 5 === 4,
      flavor: i % 5 === 4 ? 'v2' : 'obs',
      method: ['GET', 'PUT', 'PUT', 'POST', 'DELETE'][i % 5],
      query: [{}, { partNumber: '1', uploadId: 'UP+ID/0001=' }, { 'response-content-type': 'text/plain' }, { uploads: '' }, {}][i % 5],
      headers: i % 3 === 0 ? { 'Content-Type': 'text/plain', 'x-obs-meta-m': 'v' } : {},
    }));
  }
  for (const [i, spec] of S3_REQUESTS.entries()) {
    for (const variant of [0, 1, 2, 3, 4, 5, 6, 7]) {
      const key = KEYS[(i * 8 + variant) % KEYS.length];
      out.push(await s3Case(n++, spec, key, { token: variant % 2 ? TOKEN : undefined, presign: variant >= 6 }));
    }
  }
  process.stdout.write(JSON.stringify(out, null, 1));
}

main().catch(err => {
  process.stderr.write(`oracle generation failed: ${err.stack || err}\n`);
  process.exit(1);
});
