import { attest, issueChallenge, verifyStateless } from '../attest.ts';
import { authenticate, authorize } from '../auth.ts';
import { enrolWithAkCertificate, finishTpmEnrolment, startTpmEnrolment } from '../enrol.ts';
import { header, json, readJson, respond, type RouteModule } from '../http.ts';
import { releaseResource } from '../release.ts';
import { AttestRequest, ChallengeRequest, EnrolAkCertificateRequest, EnrolTpmFinishRequest, EnrolTpmStartRequest, parseBody, VerifyRequest } from '../schemas.ts';

/** The attester- and relying-party-facing protocol (docs/broker-protocol.md). */
export const protocolRoutes: RouteModule = (app, ctx) => {
  app.post('/v1/challenge', async (c) => json(c, await issueChallenge(ctx, parseBody(ChallengeRequest, await readJson(c))), 201));

  app.post('/v1/attest', async (c) => {
    const request = parseBody(AttestRequest, await readJson(c));
    return json(c, await attest(ctx, request, `attester:${request.deviceId ?? request.kind}`));
  });

  app.post('/v1/verify', async (c) => {
    const principal = await authenticate(ctx.db, header(c, 'authorization'));
    const request = parseBody(VerifyRequest, await readJson(c));
    authorize(principal, 'verify', request.tenant);
    return json(c, await verifyStateless(ctx, request, principal));
  });

  app.get('/v1/resources/:tenant/:path{.+}', async (c) => {
    const { jwe, version, expiresAt } = await releaseResource(ctx, c.req.param('tenant'), c.req.param('path'), header(c, 'authorization'));
    return respond(c, jwe, 200, { 'content-type': 'application/jose', 'cache-control': 'no-store', 'sigil-resource-version': String(version), 'sigil-lease-expires': expiresAt });
  });

  app.post('/v1/enrol/tpm/start', async (c) => c.json(await startTpmEnrolment(ctx, parseBody(EnrolTpmStartRequest, await readJson(c))), 201));
  app.post('/v1/enrol/tpm/finish', async (c) => c.json(await finishTpmEnrolment(ctx, parseBody(EnrolTpmFinishRequest, await readJson(c))), 201));
  app.post('/v1/enrol/ak-certificate', async (c) => c.json(await enrolWithAkCertificate(ctx, parseBody(EnrolAkCertificateRequest, await readJson(c))), 201));

  app.get('/.well-known/jwks.json', (c) => c.json(ctx.keys.jwks()));
};
