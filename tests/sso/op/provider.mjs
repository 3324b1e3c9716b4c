// A real OpenID provider (oidc-provider) on loopback for the SSO tests: discovery, JWKS and
// dynamic client registration (RFC 7591) enabled. Usage: node provider.mjs <port> [open|noreg|token]
// (noreg: no registration endpoint; token: registration needs an initial access token, "iat-secret").
import Provider from "oidc-provider";

const port = Number(process.argv[2] || 0);
const mode = process.argv[3] || "open";
const registration = mode === "noreg" ? { enabled: false }
  : mode === "token" ? { enabled: true, initialAccessToken: "iat-secret" } : { enabled: true };
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
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
    claims: async () => ({ sub, email: `${sub}@example.com`, email_verified: true, name: sub }),
  }),
  claims: { email: ["email", "email_verified"], profile: ["name"], openid: ["sub"] },
});
provider.proxy = false;
const server = provider.listen(port, "127.0.0.1", () => {
  console.log(`listening ${issuer}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
