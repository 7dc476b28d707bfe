// Package tokenserver is the registry's token service: it implements the
// Docker registry token authentication protocol (distribution's "Token
// Authentication Specification", GET /token with HTTP Basic credentials, and
// its "OAuth2 token authentication", POST /token with grant_type=password)
// for a fixed set of users, each with one role, and issues short-lived ES256
// JWTs that the registry (distribution v3, auth.token) verifies offline.
//
// Passwords are bcrypt hashes in a users file (see ParseUsers). A successful
// bcrypt verification is remembered in a bounded cache keyed by an
// HMAC-SHA256 of the user name and password under a random per-process key, so the
// expensive check runs once per credential and TTL, not once per request;
// the password itself is never kept. Reloading a changed users file empties
// the cache.
//
// The registry finds the signing key by the token header's kid, which is
// the key's JWK thumbprint computed as distribution computes it for the
// certificates of its auth.token.rootcertbundle; a JWKS file
// (auth.token.jwks) carrying the same kid works too. GenerateKey writes the
// key, a self-signed certificate and a JWKS.
package tokenserver
