// Two OAuth 2.0 authorization servers from the npm package oauth2-mock-server, on loopback
// ports of their own: `trusted`, the one the MCP server under test is configured with, and
// `stranger`, with keys of its own. Prints their issuer URLs as one JSON line, then takes
// commands on stdin, one per line: `rotate` adds a signing key to `trusted` (its key set then
// has both; tokens are signed by each in turn) and prints the new key's id.
//
// Token requests (POST /token, grant_type=client_credentials, with `scope` and `aud`) may also
// carry `client_id` (copied into the token's client_id and sub), `expires_in_s` (the token's
// lifetime, negative for one already expired), `iss` (an issuer to claim instead), and
// `scope_claim` / `scope_form` (below).
import { OAuth2Server } from 'oauth2-mock-server';

const trusted = new OAuth2Server();
const stranger = new OAuth2Server();
for (const server of [trusted, stranger]) {
  await server.issuer.keys.generate('RS256');
  await server.start(0, '127.0.0.1');
  server.issuer.url = `http://127.0.0.1:${server.address().port}`;
  server.service.on('beforeTokenSigning', (token, req) => {
    const body = req.body ?? {};
    if (body.client_id) {
      token.payload.client_id = body.client_id;
      token.payload.sub = body.client_id;
    }
    if (body.expires_in_s !== undefined) {
      token.payload.exp = token.payload.iat + Number(body.expires_in_s);
      token.payload.nbf = token.payload.iat - 600;
    }
    if (body.iss) token.payload.iss = body.iss;
    // The scope claim as other servers shape it: `scope_claim=scp` (Entra ID's name) and
    // `scope_form=list` (Spring Authorization Server, Duende, UAA: an array).
    if (body.scope_claim === 'scp') {
      token.payload.scp = token.payload.scope;
      delete token.payload.scope;
    }
    const claim = body.scope_claim === 'scp' ? 'scp' : 'scope';
    if (body.scope_form === 'list' && typeof token.payload[claim] === 'string') {
      token.payload[claim] = token.payload[claim].split(' ');
    }
  });
}
console.log(JSON.stringify({ trusted: trusted.issuer.url, stranger: stranger.issuer.url }));

let pending = '';
process.stdin.on('data', async (chunk) => {
  pending += chunk.toString();
  let newline;
  while ((newline = pending.indexOf('\n')) >= 0) {
    const command = pending.slice(0, newline).trim();
    pending = pending.slice(newline + 1);
    if (command === 'rotate') {
      const key = await trusted.issuer.keys.generate('RS256');
      console.log(JSON.stringify({ rotated: key.kid }));
    }
  }
});
process.stdin.on('end', () => process.exit(0));
