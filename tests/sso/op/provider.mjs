// A real OpenID provider (oidc-provider) on loopback for the SSO tests: discovery, JWKS and
// dynamic client registration (RFC 7591) enabled. Usage: node provider.mjs <port> [open|noreg|token]
// (noreg: no registration endpoint; token: registration needs an initial access token, "iat-secret").
//
// Accounts: the login name is the subject; the email is the login itself when it holds an "@",
// else <login>@example.com (always asserted as verified).
//
// Forged ID tokens, for the tests of our ID token checks: when the subject starts with
// "forge-<kind>-", the ID token the token endpoint answers (after the real code exchange) is altered:
//   issuer    iss is another issuer               (signed with the provider's real key)
//   audience  aud is another client               (signed with the provider's real key)
//   expired   exp and iat an hour ago             (signed with the provider's real key)
//   nonce     nonce is not the one we were sent   (signed with the provider's real key)
//   badsig    claims unchanged, signed by a key that is not in the JWKS but claims the real kid
//   unknownkey claims unchanged, signed by a key with a kid the JWKS does not have
//   none      claims unchanged, alg "none" and no signature
import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.argv[2] || 0);
const mode = process.argv[3] || "open";
const registration = mode === "noreg" ? { enabled: false }
  : mode === "token" ? { enabled: true, initialAccessToken: "iat-secret" } : { enabled: true };
const issuer = `http://127.0.0.1:${port}`;

const KID = "sso-test-key";
const realJwk = { ...generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" }),
  kid: KID, use: "sig", alg: "RS256" };
const realKey = createPrivateKey({ key: realJwk, format: "jwk" });
const strangerKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;

const b64 = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
function jwt(header, payload, key) {
  const input = `${b64(header)}.${b64(payload)}`;
  return key ? `${input}.${sign("sha256", Buffer.from(input), key).toString("base64url")}` : `${input}.`;
}

function forge(idToken) {
  const [rawHeader, rawPayload] = idToken.split(".");
  const header = JSON.parse(Buffer.from(rawHeader, "base64url"));
  const claims = JSON.parse(Buffer.from(rawPayload, "base64url"));
  const kind = /^forge-([a-z]+)-/.exec(String(claims.sub))?.[1];
  const now = Math.floor(Date.now() / 1000);
  switch (kind) {
    case "issuer": return jwt(header, { ...claims, iss: "http://127.0.0.1:9/another-issuer" }, realKey);
    case "audience": return jwt(header, { ...claims, aud: "another-client" }, realKey);
    case "expired": return jwt(header, { ...claims, iat: now - 7200, exp: now - 3600 }, realKey);
    case "nonce": return jwt(header, { ...claims, nonce: "not-the-nonce-we-were-sent" }, realKey);
    case "badsig": return jwt(header, claims, strangerKey);
    case "unknownkey": return jwt({ ...header, kid: "stranger-key" }, claims, strangerKey);
    case "none": return jwt({ alg: "none", typ: "JWT" }, claims, null);
    default: return idToken;
  }
}

const provider = new Provider(issuer, {
  jwks: { keys: [realJwk] },
  clients: [{
    client_id: "static-client",
    client_secret: "static-secret",
    redirect_uris: ["http://127.0.0.1:8000/api/v1/auth/sso/callback"],
  }],
  features: {
    registration,
    devInteractions: { enabled: true },
  },
  pkce: { required: () => false },
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({
      sub, email: sub.includes("@") ? sub : `${sub}@example.com`, email_verified: true, name: sub,
    }),
  }),
  claims: { email: ["email", "email_verified"], profile: ["name"], openid: ["sub"] },
});
provider.proxy = false;
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === "/token" && ctx.status === 200 && ctx.body && typeof ctx.body.id_token === "string") {
    ctx.body = { ...ctx.body, id_token: forge(ctx.body.id_token) };
  }
});
const server = provider.listen(port, "127.0.0.1", () => {
  console.log(`listening ${issuer}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
