// A SMART App Launch 2.x authorization server for the demo EHR (server.mjs --smart).
//
// - GET  /fhir/.well-known/smart-configuration   discovery (also the oauth-uris extension of /fhir/metadata)
// - GET  /ehr                                    the demo EHR: every patient, with "Open the app" (EHR launch)
// - GET  /ehr/launch?patient=ID                  a launch context (patient + its draft mecasermin order), then the
//                                                app's launch URL with iss and launch
// - GET  /auth/authorize                         checks the request, shows the sign-in page: pick the practitioner
//                                                (and, for a standalone launch, the patient)
// - POST /auth/authorize                         approve or deny: back to the redirect URI with code or error
// - POST /auth/token                             authorization code + PKCE S256 verifier -> bearer token with
//                                                patient, fhirContext, need_patient_banner and an RS256 id_token
// - GET  /auth/jwks                              the id_token signing key
// - POST /fhir/_services/smart/Launch            a launch context registered by a CDS client (the HSPC
//                                                endpoint the CDS Hooks sandbox calls for a card's SMART
//                                                link): {parameters: {patient, appContext}} -> {launch_id}
//
// Clients are public (PKCE only), registered by id and exact redirect URIs. Codes are single-use and
// live 60 s, tokens 1 hour; everything is in memory. `authorizeFhir` is the FHIR side's check: a
// valid token, and a patient-scoped token reads and writes only its patient's compartment.

import { createHash, createSign, generateKeyPairSync, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

const CODE_SECONDS = 60;
const TOKEN_SECONDS = 3600;
const PENDING_SECONDS = 600;
const SUPPORTED_SCOPES = [
  'launch', 'launch/patient', 'openid', 'fhirUser',
  'patient/*.rs', 'patient/*.read', 'patient/DocumentReference.c', 'patient/DocumentReference.write',
];
// Resource types outside any patient's compartment that a patient-scoped token may still read.
const SHARED_TYPES = new Set(['Practitioner', 'PractitionerRole', 'Organization', 'Medication', 'Location']);
const PATIENT_PARAMETERS = ['patient', 'subject', 'beneficiary'];

const randomToken = () => randomBytes(32).toString('base64url');
const base64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function sameText(a, b) {
  const left = Buffer.from(String(a));
  const right = Buffer.from(String(b));
  return left.length === right.length && timingSafeEqual(left, right);
}

export function escapeHtml(text) {
  return String(text ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// Does `scopes` allow `action` ('r' read, 's' search, 'c' create) on `type`? v2 (.cruds) and v1 (.read/.write/.*).
export function scopeAllows(scopes, type, action) {
  return scopes.some((scope) => {
    const match = /^patient\/([A-Za-z]+|\*)\.([a-z*]+)$/.exec(scope);
    if (!match || (match[1] !== '*' && match[1] !== type)) return false;
    const permission = match[2];
    if (permission === '*') return true;
    if (permission === 'read') return action === 'r' || action === 's';
    if (permission === 'write') return action === 'c' || action === 'u' || action === 'd';
    return /^c?r?u?d?s?$/.test(permission) && permission.includes(action);
  });
}

// The SMART v2 permission letter of a FHIR interaction: c(reate), r(ead), u(pdate), d(elete), s(earch).
function fhirAction(method, segments) {
  const searching = segments.length === 1 || segments[1] === '_search';
  if (method === 'GET') return searching ? 's' : 'r';
  if (method === 'POST') return segments[1] === '_search' ? 's' : 'c';
  return method === 'DELETE' ? 'd' : 'u';
}

function patientOf(resource) {
  if (resource?.resourceType === 'Patient') return resource.id;
  for (const key of PATIENT_PARAMETERS) {
    const reference = resource?.[key]?.reference;
    if (typeof reference === 'string' && reference.startsWith('Patient/')) return reference.slice('Patient/'.length);
  }
  return undefined;
}

function humanName(resource) {
  const name = resource?.name?.[0];
  if (!name) return resource?.id ?? '';
  return name.text ?? [...(name.prefix ?? []), ...(name.given ?? []), name.family].filter(Boolean).join(' ');
}

export function createSmartAuth({ clients, launchUrl, readResource, searchResources }) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomUUID();
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  const launches = new Map(); // launch id -> { patient, order, expires }
  const pending = new Map(); // sign-in id -> the checked authorize request
  const codes = new Map(); // code -> what the token will carry
  const tokens = new Map(); // access token -> { scopes, patient, expires }

  const now = () => Date.now() / 1000;
  const live = (map, key) => {
    const value = map.get(key);
    if (value && value.expires > now()) return value;
    map.delete(key);
    return undefined;
  };
  const sweep = () => {
    for (const map of [launches, pending, codes, tokens]) {
      for (const [key, value] of map) if (value.expires <= now()) map.delete(key);
    }
  };

  function configuration(base) {
    const origin = new URL(base).origin;
    return {
      issuer: base,
      jwks_uri: `${origin}/auth/jwks`,
      authorization_endpoint: `${origin}/auth/authorize`,
      token_endpoint: `${origin}/auth/token`,
      grant_types_supported: ['authorization_code'],
      token_endpoint_auth_methods_supported: ['none'],
      scopes_supported: SUPPORTED_SCOPES,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      capabilities: [
        'launch-ehr', 'launch-standalone', 'client-public', 'context-ehr-patient', 'context-standalone-patient',
        'permission-patient', 'permission-v1', 'permission-v2', 'sso-openid-connect', 'authorize-post',
      ],
    };
  }

  function oauthUris(base) {
    const config = configuration(base);
    return {
      url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
      extension: [
        { url: 'authorize', valueUri: config.authorization_endpoint },
        { url: 'token', valueUri: config.token_endpoint },
      ],
    };
  }

  // ----------------------------------------------------------------------- the demo EHR
  async function ehrPage() {
    const patients = await searchResources('Patient', '_count=1000&_sort=_id');
    const rows = patients
      .map((p) => `<li><a href="/ehr/launch?patient=${encodeURIComponent(p.id)}">${escapeHtml(humanName(p))}</a>` +
        ` <small>${escapeHtml(p.id)}, born ${escapeHtml(p.birthDate)}</small></li>`)
      .join('\n');
    return page('Demo EHR', `<h1>Demo EHR</h1>
<p>Open the mecasermin coverage app for a patient (an EHR launch, as from the patient's chart).</p>
<ul class="patients">${rows}</ul>`);
  }

  async function ehrLaunch(params) {
    const patientId = params.get('patient') ?? '';
    const patient = await readResource('Patient', patientId);
    if (!patient) return { status: 404, html: page('Unknown patient', `<p>No patient ${escapeHtml(patientId)}.</p>`) };
    if (!launchUrl) return { status: 409, html: page('No app', '<p>Start the server with --smart-launch-url.</p>') };
    const drafts = await searchResources('MedicationRequest', `patient=${encodeURIComponent(patientId)}&status=draft`);
    const order = drafts.find((r) => JSON.stringify(r.medicationCodeableConcept ?? {}).toLowerCase().includes('mecasermin'));
    sweep();
    const launch = randomToken();
    launches.set(launch, { patient: patientId, order: order ? `MedicationRequest/${order.id}` : undefined, expires: now() + PENDING_SECONDS });
    return { status: 302, location: (iss) => `${launchUrl}${launchUrl.includes('?') ? '&' : '?'}iss=${encodeURIComponent(iss)}&launch=${encodeURIComponent(launch)}` };
  }

  // The CDS Hooks sandbox posts here for every card SMART link it shows (then launches the link
  // with launch=launch_id and iss). The sign-in page still asks the user to allow the app.
  async function registerLaunch(body) {
    const parameters = body?.parameters;
    const patientId = parameters?.patient;
    const appContext = parameters?.appContext;
    if (typeof patientId !== 'string' || !(await readResource('Patient', patientId))) {
      return { status: 400, body: { error: 'invalid_request', error_description: 'parameters.patient must be a patient of this server' } };
    }
    if (appContext !== undefined && (typeof appContext !== 'string' || appContext.length > 4096)) {
      return { status: 400, body: { error: 'invalid_request', error_description: 'parameters.appContext must be a string' } };
    }
    sweep();
    const launch = randomToken();
    launches.set(launch, { patient: patientId, appContext, expires: now() + PENDING_SECONDS });
    return { status: 200, body: { launch_id: launch } };
  }

  // ----------------------------------------------------------------------- authorize
  // Problems that must not be sent back to the redirect URI (it is not known to be the client's).
  function checkClient(params) {
    const client = clients.get(params.get('client_id') ?? '');
    if (!client) return 'unknown client_id';
    if (!client.redirectUris.includes(params.get('redirect_uri') ?? '')) return 'redirect_uri is not registered for this client';
    return undefined;
  }

  function redirectWith(redirectUri, values) {
    const url = new URL(redirectUri);
    for (const [key, value] of Object.entries(values)) if (value !== undefined) url.searchParams.set(key, value);
    return url.toString();
  }

  async function authorize(params, base) {
    const clientProblem = checkClient(params);
    if (clientProblem) return { status: 400, html: page('Sign-in refused', `<p>${escapeHtml(clientProblem)}.</p>`) };
    const redirectUri = params.get('redirect_uri');
    const state = params.get('state') ?? undefined;
    const refuse = (error, description) => ({ status: 302, location: redirectWith(redirectUri, { error, error_description: description, state }) });
    if (params.get('response_type') !== 'code') return refuse('unsupported_response_type', 'response_type must be code');
    if (params.get('aud') !== base) return refuse('invalid_request', 'aud must be this FHIR server');
    if (params.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(params.get('code_challenge') ?? '')) {
      return refuse('invalid_request', 'PKCE with code_challenge_method S256 is required');
    }
    const requested = (params.get('scope') ?? '').split(/\s+/).filter(Boolean);
    const scopes = requested.filter((s) => SUPPORTED_SCOPES.includes(s));
    let launch;
    if (params.get('launch')) {
      launch = live(launches, params.get('launch'));
      if (!launch || !scopes.includes('launch')) return refuse('invalid_request', 'unknown or expired launch');
    } else if (!scopes.includes('launch/patient')) {
      return refuse('invalid_scope', 'a standalone launch needs launch/patient');
    }
    sweep();
    const id = randomToken();
    pending.set(id, {
      clientId: params.get('client_id'), redirectUri, state, scopes, challenge: params.get('code_challenge'),
      patient: launch?.patient, order: launch?.order, appContext: launch?.appContext, expires: now() + PENDING_SECONDS,
    });
    return { status: 200, html: await signInPage(id, pending.get(id)) };
  }

  async function signInPage(id, request) {
    const practitioners = await searchResources('Practitioner', '_count=1000&_sort=_id');
    const options = (items) => items.map((r) => `<option value="${escapeHtml(r.id)}">${escapeHtml(humanName(r))}</option>`).join('');
    let patientField;
    if (request.patient) {
      const patient = await readResource('Patient', request.patient);
      patientField = `<p>Patient: <strong id="patient-name">${escapeHtml(humanName(patient))}</strong></p>`;
    } else {
      const patients = await searchResources('Patient', '_count=1000&_sort=_id');
      patientField = `<label>Patient <select name="patient" id="patient">${options(patients)}</select></label>`;
    }
    return page('Sign in to the demo EHR', `<h1>Sign in to the demo EHR</h1>
<form method="post" action="/auth/authorize">
<input type="hidden" name="request" value="${escapeHtml(id)}">
<label>Practitioner <select name="practitioner" id="practitioner">${options(practitioners)}</select></label>
${patientField}
<p>The app <strong>${escapeHtml(request.clientId)}</strong> asks for: <code>${escapeHtml(request.scopes.join(' '))}</code></p>
<button type="submit" name="decision" value="approve" id="approve">Sign in and allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>`);
  }

  async function decide(form) {
    const request = live(pending, form.get('request') ?? '');
    if (!request) return { status: 400, html: page('Sign-in expired', '<p>This sign-in is unknown or has expired. Start again from the app.</p>') };
    pending.delete(form.get('request'));
    if (form.get('decision') !== 'approve') {
      return { status: 302, location: redirectWith(request.redirectUri, { error: 'access_denied', state: request.state }) };
    }
    const practitioner = await readResource('Practitioner', form.get('practitioner') ?? '');
    const patientId = request.patient ?? form.get('patient') ?? '';
    const patient = await readResource('Patient', patientId);
    if (!practitioner || !patient) return { status: 400, html: page('Sign-in refused', '<p>Pick a practitioner and a patient of this EHR.</p>') };
    const code = randomToken();
    codes.set(code, { ...request, patient: patientId, practitioner: practitioner.id, expires: now() + CODE_SECONDS });
    return { status: 302, location: redirectWith(request.redirectUri, { code, state: request.state }) };
  }

  // ----------------------------------------------------------------------- token
  function idToken(grant, base) {
    const header = { alg: 'RS256', typ: 'JWT', kid };
    const issued = Math.floor(now());
    const claims = {
      iss: base, sub: grant.practitioner, aud: grant.clientId, iat: issued, exp: issued + TOKEN_SECONDS,
      fhirUser: `${base}/Practitioner/${grant.practitioner}`,
    };
    const signingInput = `${base64url(header)}.${base64url(claims)}`;
    const signature = createSign('RSA-SHA256').update(signingInput).sign(privateKey).toString('base64url');
    return `${signingInput}.${signature}`;
  }

  function token(form, base) {
    const error = (status, code, description) => ({ status, body: { error: code, error_description: description } });
    if (form.get('grant_type') !== 'authorization_code') return error(400, 'unsupported_grant_type', 'only authorization_code');
    const code = form.get('code') ?? '';
    const grant = live(codes, code);
    codes.delete(code); // single use, whatever happens next
    if (!grant) return error(400, 'invalid_grant', 'unknown, used or expired code');
    if (form.get('client_id') !== grant.clientId || form.get('redirect_uri') !== grant.redirectUri) {
      return error(400, 'invalid_grant', 'client_id or redirect_uri differ from the authorize request');
    }
    const verifier = form.get('code_verifier') ?? '';
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || !sameText(challenge, grant.challenge)) {
      return error(400, 'invalid_grant', 'code_verifier does not match the code_challenge');
    }
    sweep();
    const accessToken = randomToken();
    tokens.set(accessToken, { scopes: grant.scopes, patient: grant.patient, expires: now() + TOKEN_SECONDS });
    const body = {
      access_token: accessToken, token_type: 'Bearer', expires_in: TOKEN_SECONDS, scope: grant.scopes.join(' '),
      patient: grant.patient, need_patient_banner: true,
    };
    if (grant.order) body.fhirContext = [{ reference: grant.order }];
    if (grant.appContext) body.appContext = grant.appContext;
    if (grant.scopes.includes('openid') && grant.scopes.includes('fhirUser')) body.id_token = idToken(grant, base);
    return { status: 200, body };
  }

  // ----------------------------------------------------------------------- the FHIR side
  // undefined: allowed so far (a read is checked again on the resource it returns); else {status, text}.
  function authorizeFhir(authorization, method, segments, params) {
    const match = /^Bearer ([A-Za-z0-9_-]+)$/.exec(authorization ?? '');
    const grant = match ? live(tokens, match[1]) : undefined;
    if (!grant) return { status: 401, text: 'A valid bearer token is required (SMART on FHIR)' };
    const type = segments[0];
    if (!type || type.startsWith('$') || type.startsWith('_')) return { status: 403, text: 'System-level interactions are not allowed for this token' };
    const action = fhirAction(method, segments);
    if (SHARED_TYPES.has(type) && (action === 'r' || action === 's')) return { grant };
    if (!scopeAllows(grant.scopes, type, action)) return { status: 403, text: `The token's scopes do not allow this on ${type}` };
    if (action === 's') {
      const values = type === 'Patient' ? params.getAll('_id') : PATIENT_PARAMETERS.flatMap((p) => params.getAll(p));
      if (values.length === 0 || !values.every((v) => v === grant.patient || v === `Patient/${grant.patient}`)) {
        return { status: 403, text: `A search must be limited to the patient in context (${type === 'Patient' ? '_id' : 'patient'}=...)` };
      }
    }
    return { grant };
  }

  // A resource read or written with a patient-scoped token must belong to its patient.
  function inCompartment(grant, resource) {
    return SHARED_TYPES.has(resource?.resourceType) || patientOf(resource) === grant.patient;
  }

  return {
    configuration, oauthUris, ehrPage, ehrLaunch, registerLaunch, authorize, decide, token, authorizeFhir, inCompartment,
    jwks: () => ({ keys: [jwk] }),
  };
}

function page(title, body) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin:.8rem 0}select{font-size:1rem;margin-left:.5rem}button{font-size:1rem;margin-right:.5rem}</style>
</head><body>${body}</body></html>`;
}
